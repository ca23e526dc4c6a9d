"""The JSON shapes of the API's resources, defined once (pydantic models, one module per resource):
the API validates its answers against them, the client and the agent read answers into them.

Only this package and ``epa.api`` import pydantic (an import-linter contract); what a model holds is
turned into domain values at the edge that reads it, and nothing below the edge sees JSON."""
