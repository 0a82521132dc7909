"""Worker and server error-feedback memory."""
from hvd_qsparse.error_feedback.memory import Compressed, ErrorFeedback

__all__ = ["Compressed", "ErrorFeedback"]
