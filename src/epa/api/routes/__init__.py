"""Route handlers, one module per noun: thin translation between HTTP bodies and the inventory layer."""
