"""The dashboard in a browser (``canarylab serve``): an aiohttp server around textual-serve's process bridge.

Each browser tab opens a websocket; the server starts one dashboard process for it (its own simulated lab), or,
in shared mode, lets every tab watch one process while only the first tab to connect may act. It never imports
the dashboard itself: the tabs' processes do.
"""
