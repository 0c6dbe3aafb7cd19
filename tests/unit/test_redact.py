from montagu_console.redact import redact, redact_data


def test_conninfo_password():
    assert redact("host=db user=barman password=s3cret dbname=montagu") == \
        "host=db user=barman password=*REDACTED* dbname=montagu"


def test_url_env_and_quoted_forms():
    out = redact("postgresql://barman:pw123@db/x PGPASSWORD=abc BARMAN_MONTAGU_PASS_BACKUP=xyz password='a b'")
    for secret in ("pw123", "abc", "xyz", "a b"):
        assert secret not in out


def test_private_key_block():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert "AAAA" not in redact(f"oops {key} done")


def test_structures_keep_their_shape():
    assert redact_data({"a": ["password=x", 3], "b": None}) == {"a": ["password=*REDACTED*", 3], "b": None}
