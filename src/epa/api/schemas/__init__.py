"""Request and response bodies (pydantic), one module per noun, as in ``routes``."""
