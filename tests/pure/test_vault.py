"""License keys at rest: sealing, rotation, lookup hashes and weak secrets."""

import base64
import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet

from microsoft_esd import vault

KEY = "Q4HHJ-D32FY-FDRCR-C6GKW-V6M33"
OLD = "0ld-s3cret-tHat-was-lOng-enough-for-its-time-42"
NEW = "n3w-Secret-after-rotat1on-0f-the-esd-token-key-77"


def test_weak_secrets_are_refused_saying_what_a_good_one_is():
    for weak in ("correct horse battery", "a" * 40, "abcabcabcabcabcabcabcabcabcabcabcabc"):
        with pytest.raises(vault.WeakSecretError, match="at least 32 random characters"):
            vault.Vault.from_config(weak)
    with pytest.raises(vault.WeakSecretError, match="same secret twice"):
        vault.Vault.from_config(f"{NEW},{NEW}")
    assert vault.Vault.from_config(f" {NEW} , {OLD} ").encrypting


def test_seal_opens_with_the_same_secret_only():
    box = vault.Vault([NEW])
    stored = box.seal(KEY)
    assert stored.startswith(vault.SEALED_V2) and KEY not in stored
    assert box.unseal(stored) == KEY
    assert box.seal(KEY) != stored  # a fresh IV each time
    with pytest.raises(ValueError, match="no secret of esd_token_key opens"):
        vault.Vault([OLD]).unseal(stored)
    with pytest.raises(ValueError, match="no secret of esd_token_key opens"):
        vault.Vault([], fallback_secret="db").unseal(stored)


def test_rotation_first_secret_seals_every_secret_opens():
    stored_old = vault.Vault([OLD]).seal(KEY)
    rotated = vault.Vault([NEW, OLD])
    assert rotated.unseal(stored_old) == KEY
    assert not rotated.is_current(stored_old)
    resealed = rotated.seal(rotated.unseal(stored_old))
    assert rotated.is_current(resealed)
    assert vault.Vault([NEW]).unseal(resealed) == KEY


def test_without_a_secret_keys_are_sealed_with_the_fallback_secret():
    box = vault.Vault([], fallback_secret="database-secret")
    assert not box.encrypting
    stored = box.seal(KEY)
    assert stored.startswith(vault.SEALED_V2) and KEY not in stored
    assert box.unseal(stored) == KEY and box.is_current(stored)
    assert box.unseal(KEY) == KEY and not box.is_current(KEY)  # stored in clear once: re-seal
    assert not box.is_current(vault.Vault([NEW]).seal(KEY))  # a secret was removed: re-seal
    # Once an operator secret is set, what the fallback sealed still opens and is re-sealed.
    configured = vault.Vault([NEW], fallback_secret="database-secret")
    assert configured.encrypting
    assert configured.unseal(stored) == KEY and not configured.is_current(stored)


def test_the_first_format_still_opens():
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(NEW.encode()).digest()))
    stored = vault.SEALED_V1 + legacy.encrypt(KEY.encode()).decode()
    box = vault.Vault([NEW])
    assert box.unseal(stored) == KEY
    assert not box.is_current(stored)


def test_lookup_hash_ignores_case_and_spaces_and_separates_keys():
    box = vault.Vault([NEW])
    assert box.lookup_hash(KEY) == box.lookup_hash(f" {KEY.lower()} ")
    assert box.lookup_hash(KEY) != vault.Vault([OLD]).lookup_hash(KEY)
    # The lookup key is derived apart from the encryption key: it is not the secret itself.
    assert box.lookup_hash(KEY) != hmac.new(NEW.encode(), KEY.encode(), hashlib.sha256).hexdigest()


def test_lookup_hashes_cover_rotation_the_first_format_and_the_fallback():
    rotated = vault.Vault([NEW, OLD], fallback_secret="database-secret")
    candidates = rotated.lookup_hashes(KEY)
    assert vault.Vault([OLD]).lookup_hash(KEY) in candidates
    assert vault.Vault([], fallback_secret="database-secret").lookup_hash(KEY) in candidates
    first_format_fallback = hmac.new(b"database-secret", KEY.encode(), hashlib.sha256).hexdigest()
    assert first_format_fallback in candidates
    first_format = hmac.new(OLD.encode(), KEY.encode(), hashlib.sha256).hexdigest()
    assert first_format in candidates
