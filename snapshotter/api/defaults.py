"""Defaults of the fetch, kept apart from the HTTP client so that reading them (for `--help`
and option defaults) costs no import of httpx or asyncio."""

PRODUCTION_BASE_URL = "https://xporter.groupcall.com/api/ims/oneroster/v1p1/school"

# Connections per school. `python bench/fetch.py --sweep` (1,000 pupils, simulator in its own
# process, 100-record cap, 2 cores), median wall seconds for --concurrency 1/2/4/8/12/16/32:
#   20 ms latency: 3.62 2.12 1.18 0.77 0.65 0.69 0.81
#    0 ms latency: 0.54 0.55 0.54 0.57 0.57 0.63 0.64
# Past 8 the client's own CPU is the limit: 12 gains 15% at 20 ms, 16 and up lose. 8 keeps a
# provider serving many schools at a browser-like load per client, for most of the gain.
DEFAULT_CONCURRENCY = 8
DEFAULT_PAGE_SIZE = 100  # the OneRoster default; servers cap it anyway
DEFAULT_ENDPOINT_ATTEMPTS = 3
DEFAULT_TIMEOUT_S = 60.0
