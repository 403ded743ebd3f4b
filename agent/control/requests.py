# Every request type the management channel knows -> its handler (an
# async fn(body) -> reply body, raising CommandError with the reason), or
# None for a type of the cloud-control API not supported yet. A new type
# is one line in its family's register(), or here.
from agent.control import app, files, screen, system

# The seed's types that come in later slices: answered "not supported yet".
NOT_YET = ("script/list", "script/run", "script/stop", "script/encrypt", "script/get", "script/put",
           "script/delete")


def table(device, logs):
    """`logs`: the console's lines on flash (agent/log_flash.py)."""
    handlers = {}
    for name in NOT_YET:
        handlers[name] = None
    app.register(handlers, device)
    system.register(handlers, device, logs)
    files.register(handlers, device)
    screen.register(handlers, device)
    return handlers
