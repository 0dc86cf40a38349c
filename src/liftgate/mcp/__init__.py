"""``liftgate mcp``: liftgate's operations as tools for AI agents (Model Context Protocol).

``tools`` holds the tools (approval flow, background runs) independent of the SDK;
``server`` serves them with the official ``mcp`` SDK over stdio or streamable HTTP;
``jobs`` starts and follows the detached ``python -m liftgate ... --json`` runs.
"""
