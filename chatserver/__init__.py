"""Anonymous chat counselling service: the aiohttp application, sockets, command line."""
