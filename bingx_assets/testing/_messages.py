"""BingX's own wording, from its docs and from captures (shared/api/bingx-facts.md)."""

MSG_BAD_KEY = "Incorrect apiKey"
MSG_NULL_SIGNATURE = "Null signature"
MSG_BAD_SIGNATURE = "Signature verification failed"
MSG_TIMESTAMP = (
    "Null timestamp or timestamp mismatch, try to run our sample code from the link "
    "https://bingx-api.github.io/docs/#/en-us/spot/account-api.html#Query%20Assets"
)
MSG_TIMESTAMP_INVALID = "timestamp is invalid"
MSG_WHITELIST = (
    "IP does not match IP whitelist , please go to https://bingx.com/en/account/api/ "
    "to verify the ip you have set"
)
MSG_PERMISSION = "Permission denied as the API key was created without the permission"
MSG_RATE_LIMITED = "rate limited"
MSG_DISABLED = (
    "code:100410:The endpoint trigger frequency limit rule is currently in the disabled "
    "period and will be unblocked after {until}"
)
MSG_TOO_MANY_ERRORS = (
    "over {limit} error code:{code} requests within {period_ms} ms for this api, "
    "please verify and fix it ,can retry after time: {until}"
)
MSG_SYSTEM_BUSY = "The current system is busy, please try again later"
