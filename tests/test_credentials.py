"""Recognising credentials in cell code (pure: strings in, strings out)."""

from __future__ import annotations

import pytest

from colab_elastic import ambient, credentials

GITHUB = "ghp_" + "A1b2C3d4E5" * 4
OPENAI = "sk-proj-" + "Zy9Xw8Vu7T" * 3
HF = "hf_" + "QwErTyUiOp" * 4


@pytest.mark.parametrize("code, secret, kind", [
    (f'import os\nos.environ["OPENAI_API_KEY"] = "{OPENAI}"', OPENAI, "OpenAI key"),
    (f"token = '{GITHUB}'", GITHUB, "GitHub token"),
    ("gh = 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz'", "github_pat_11ABCDEFG0123456789", "GitHub token"),
    (f"%env HF_TOKEN={HF}", HF, "Hugging Face token"),
    ("%env MY_PASSWORD hunter2", "hunter2", "%env MY_PASSWORD"),
    ("%set_env WANDB_API_KEY=0123456789abcdef", "0123456789abcdef", "%env WANDB_API_KEY"),
    ("%elastic checkpoint gs://b/x -o token=abc123secret", "abc123secret", "option token"),
    ("session = boto3.Session(aws_access_key_id='AKIAIOSFODNN7EXAMPLE')", "AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
    ("aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'", "wJalrXUtnFEMI", "aws_secret_access_key value"),
    ('sa = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"}',
     "MIIEvQ", "service-account key"),
    ("creds = Credentials('ya29.a0AfH6SMBabcdefghijklmnopqrstuvwxyz')", "ya29.a0AfH6SMB", "Google OAuth token"),
    ("client = WebClient(token='xoxb-123456789012-abcdefABCDEF')", "xoxb-123456789012", "Slack token"),
    ("requests.get(url, headers={'Authorization': 'Bearer abcdefghijklmnop0123'})", "abcdefghijklmnop0123", "Authorization value"),
    ("!curl -H \"Authorization: Bearer abcdefghijklmnop0123\" https://api", "abcdefghijklmnop0123", "bearer token"),
    ("key = \"\"\"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\"\"\"", "MIIEow", "private key"),
    ("!pip install git+https://ada:s3cretpass@github.com/ada/private", "s3cretpass", "password in a URL"),
    ("db = connect(host='h', password='correct horse battery')", "correct horse", "password value"),
    ("cfg = {'api_key': 'k-12345'}", "k-12345", "api_key value"),
])
def test_each_kind_is_scrubbed_and_named(code, secret, kind):
    scrubbed, kinds = credentials.scrub(code)
    assert secret not in scrubbed
    assert kind in kinds and f"[scrubbed {kinds[0]}]" in scrubbed
    assert credentials.scrubbed_kinds(scrubbed) == kinds
    assert credentials.scrub(scrubbed) == (scrubbed, [])  # scrubbing twice changes nothing


@pytest.mark.parametrize("code", [
    "fs = gcsfs.GCSFileSystem(token='anon')",
    "tokenizer = 'bert-base-uncased'\nmax_tokens = '512'\ntoken_ids = 'a b'",
    "if password == 'x':\n    pass",
    "%env PATH=/usr/local/bin",
    "%elastic checkpoint gs://b/x -o token=/content/sa.json",
    "author = 'Ada Lovelace'\nkey = 'name'",
    "call(token=f'{token}')",
    "desk = 'sk-short'",
])
def test_ordinary_code_is_left_alone(code):
    assert credentials.scrub(code) == (code, [])


def test_a_value_that_is_itself_a_secret():
    assert credentials.secret_value(GITHUB) == "GitHub token"
    assert credentials.secret_value("hunter2", "db_password") == "db_password value"
    assert credentials.secret_value({"llm": {"api_key": "k-1"}}, "config") == "api_key value"
    assert credentials.secret_value(["a", OPENAI]) == "OpenAI key"
    assert credentials.secret_value("bert", "tokenizer") is None
    assert credentials.secret_value("5f0c2b8e9d0a4c1b", "token") is None  # a bare `token`: a uuid as often as a key
    assert credentials.secret_value(list(range(100_000)) + [GITHUB]) is None  # looked at up to a budget


def test_environment_values_that_look_secret_are_withheld_and_named_on_apply(monkeypatch):
    effect = {"os.environ": {"set": {"OPENAI_API_KEY": OPENAI, "GH": GITHUB, "MODE": "fast",
                                     "GOOGLE_APPLICATION_CREDENTIALS": "/content/sa.json"}, "unset": []}}
    kept = ambient.withhold_credentials(effect)["os.environ"]
    assert kept == {"set": {"MODE": "fast", "GOOGLE_APPLICATION_CREDENTIALS": "/content/sa.json"}, "unset": [],
                    "withheld": ["GH", "OPENAI_API_KEY"]}
    encoded, _ = ambient.encode({"os.environ": kept})
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MODE", "slow")
    failures = ambient.Ambient().apply(encoded)
    assert failures == {"os.environ['GH']": credentials.WITHHELD, "os.environ['OPENAI_API_KEY']": credentials.WITHHELD}
    import os

    assert os.environ["MODE"] == "fast" and "OPENAI_API_KEY" not in os.environ


def test_share_lists_secrets_in_an_old_manifest_without_showing_them():
    """A checkpoint written before scrubbing (or by another tool) still carries its keys: say where."""
    import base64
    import pickle

    from colab_elastic.sharing import secrets_found, secrets_text

    settings = base64.b64encode(pickle.dumps({"os.environ": pickle.dumps({"set": {"K": GITHUB}})})).decode()
    manifest = {
        "graph": {"executions": [{"index": 1, "code": f"key = '{OPENAI}'"},
                                 {"index": 2, "code": "t = '[scrubbed GitHub token]'", "ambient": settings}]},
        "groups": [{"fingerprints": {"t": {"content": "withheld", "complete": False}}}],
        "files": {"log": {"cells": {"3": {"installs": ["!pip install git+https://u:pass1234@host/x"]}}}},
    }
    found = secrets_found(manifest)
    assert found == ["cell 1: OpenAI key, IN THE STORED CODE", "cell 2: GitHub token (left out of the stored code)",
                     "cell 2: a session setting (an environment variable?) holds a GitHub token, IN THE CHECKPOINT",
                     "variable t: looks like a credential (not stored)",
                     "cell 3: password in a URL in an install line, IN THE CHECKPOINT"]
    text = secrets_text(found)
    assert OPENAI not in text and GITHUB not in text and "revoke" in text
