"""Imported first by every user script: from here on an uncaught UserError is one `error: ...` line and Ctrl-C one
line (status 130), never a traceback, even while PyTorch is still loading (a script's imports take 1-2 s). A program
that only uses the library does not import it, and keeps its own sys.excepthook."""
from .utils import one_line_errors

one_line_errors()
