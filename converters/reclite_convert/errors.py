"""The one error type of the converter: the CLI prints its message and exits with status 2."""


class ConversionError(Exception):
    """A model, spec or weight file cannot be converted; the message names the key or field at fault."""
