def main() -> int:
    raise SystemExit("login-etl drain: not built yet")
