"""Worker and server error-feedback memory."""
from hvd_qsparse.error_feedback.memory import ErrorFeedback

__all__ = ["ErrorFeedback"]
