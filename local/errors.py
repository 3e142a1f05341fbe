"""The one error the embedded platform raises: a message a person can act on, plus optional detail (a log tail)."""


class LocalError(Exception):
    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message}\n{self.detail}" if self.detail else self.message
