# Every request type the management channel knows -> its handler (an
# async fn(body) -> reply body, raising CommandError with the reason). A
# new type is one line in its family's register(), or a family here.
from agent.control import app, files, screen, scripts, system


def table(device, logs):
    """`logs`: the console's lines on flash (agent/log_flash.py)."""
    handlers = {}
    app.register(handlers, device)
    system.register(handlers, device, logs)
    files.register(handlers, device)
    screen.register(handlers, device)
    scripts.register(handlers, device)
    return handlers
