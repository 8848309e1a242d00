"""Secrets never reach an error message."""

from microsoft_esd.errors import ConflictError, redact


def test_redact_masks_keys_tokens_and_passwords():
    text = (
        "license key Q4HHJ-D32FY-FDRCR-C6GKW-V6M33 Authorization: Bearer abc.def-ghi "
        '{"password": "hunter2", "token": "XYZ"} eyJhbGciOi.eyJzdWIi.sig'
    )
    clean = redact(text)
    for secret in ("Q4HHJ-D32FY", "abc.def-ghi", "hunter2", '"XYZ"', "eyJhbGciOi"):
        assert secret not in clean
    assert "*****-*****-*****-*****-*****" in clean


def test_error_messages_are_redacted_and_keep_the_correlation_id():
    error = ConflictError(
        "CIS refused: key Q4HHJ-D32FY-FDRCR-C6GKW-V6M33 in use", correlation_id="corr-1"
    )
    assert "Q4HHJ" not in str(error)
    assert str(error).endswith("(correlation id corr-1)")
