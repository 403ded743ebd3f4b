# What a kept script and its made-stoppable text look like, shared by the
# modules of script/* (scripts.py registers them; script_store.py keeps
# them, script_check.py checks and rewrites them, script_run.py runs them,
# sealed.py seals them) so that none of them loads another for a name.
FOLDER = ".scripts"   # beside the data root, in the board's journal.path
MAX_SCRIPTS = 16
MAX_BYTES = 4096      # a script's text (a check and compile need ~24 times that free on a board)
SEALED = b"DLS1"      # how a sealed script starts: told apart without loading sealed.py
CHECK = "_dl_w"       # the checkpoint the checker writes and the runner provides
ITER = "_dl_it"       # the checking iterator
MAIN = "_dl_main"     # what the top level becomes
