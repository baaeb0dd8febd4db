"""Static pages served by the chat service (plain HTML, CSS and JavaScript modules)."""
