from montagu_console.redact import redact, redact_data


def test_conninfo_password():
    assert (
        redact("host=db user=barman password=s3cret dbname=montagu")
        == "host=db user=barman password=*REDACTED* dbname=montagu"
    )


def test_url_env_and_quoted_forms():
    out = redact("postgresql://barman:pw123@db/x PGPASSWORD=abc BARMAN_MONTAGU_PASS_BACKUP=xyz password='a b'")
    for secret in ("pw123", "abc", "xyz", "a b"):
        assert secret not in out


def test_private_key_block():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    assert "AAAA" not in redact(f"oops {key} done")


def test_structures_keep_their_shape():
    assert redact_data({"a": ["password=x", 3], "b": None}) == {"a": ["password=*REDACTED*", 3], "b": None}


# -- finding 17: the gaps ------------------------------------------------------------------

import pytest  # noqa: E402


@pytest.mark.parametrize(
    "text,secret",
    [
        ('{"password": "hunter2", "user": "barman"}', "hunter2"),
        ('{"password": "a\\"b-c", "x": 1}', "b-c"),
        ("{'token': 'tok-123'}", "tok-123"),
        ("password='a\\'b-tail'", "b-tail"),
        ('password="x\\"y-tail"', "y-tail"),
        ("postgresql://barman:p@ss@word@db.example:5432/montagu", "ss@word"),
        ("postgresql://barman:p@ss@db/montagu", "p@ss"),
        ("GITHUB_TOKEN=ghp_abcdef", "ghp_abcdef"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", "wJalrXUtnFEMI"),
        ("MY_API_KEY=k-42", "k-42"),
        ("Authorization: Bearer eyJhbGciOi", "eyJhbGciOi"),
        ("notify https://hooks.slack.com/services/T000/B000/XXXXSECRET failed", "XXXXSECRET"),
        ("https://example.org/hook?token=abc123&x=1", "abc123"),
        ("secret: s3cr3t", "s3cr3t"),
        ("api_key=zzz-key", "zzz-key"),
    ],
)
def test_secret_forms(text, secret):
    out = redact(text)
    assert secret not in out, out
    assert "REDACTED" in out


def test_ordinary_text_is_kept():
    for text in (
        "barman check montagu: OK",
        "https://example.org/",
        "slot barman active",
        "lag 0 B",
        "https://example.org/health",
    ):
        assert redact(text) == text


def test_secret_named_keys_are_blanked_in_structures():
    data = {"password": "x", "POSTGRES_PASSWORD": "y", "nested": [{"api_token": 5}], "user": "barman"}
    out = redact_data(data)
    assert out["password"] == out["POSTGRES_PASSWORD"] == out["nested"][0]["api_token"] == "*REDACTED*"
    assert out["user"] == "barman"


def test_verification_rows_keep_their_passed_flag():
    row = {"name": "rows", "sql": "select 1", "expect": "> 0", "value": "3", "passed": True}
    assert redact_data(row) == row
