"""login-etl: SQS login events → validate → mask (HMAC) → Postgres ``user_logins``.

Modules follow the data flow: ``records`` (parse/validate) → ``masking`` → ``versions``
→ ``pipeline`` (one batch) → ``postgres`` (the store); ``config``/``secrets`` resolve
settings, ``telemetry`` holds Logger/Metrics, ``schema`` creates the database objects.
"""
