# What a WebSocket uplink session codec reports from Session.receive(text).
# Every WebSocket protocol (seed 001 JSON, seed 001 XML) speaks through the
# same events, so one uplink loop (agent/uplinks/ws.py) serves them all.
REGISTERED = "registered"      # (REGISTERED, server_acks: bool)
ACK = "ack"                    # (ACK, record_id): the cloud stored that record
AUTH_FAILED = "auth_failed"    # (AUTH_FAILED, message): registration refused
REREGISTER = "reregister"      # (REREGISTER, message): the server forgot our session
SERVER_ERROR = "server_error"  # (SERVER_ERROR, message): the server objects to something we sent
COMMAND = "command"            # (COMMAND, id_or_None, name, payload)
SEND = "send"                  # (SEND, text): a reply the codec wants sent (pong)
BAD_INPUT = "bad_input"        # (BAD_INPUT, counter_name, message)
NOTHING = "nothing"            # liveness only (pong, broadcasts)
