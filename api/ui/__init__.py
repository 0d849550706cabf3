"""The web page at /ui: a page shell served without a key, and HTML fragments under
/ui/parts that need one (the page's script sends it from the browser session)."""
