"""The SM2 token signing key: from TOKEN_SIGNING_KEY, or (dev/test only) generated once and kept
in a file under var/ so that tokens survive restarts."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from zizhu_common.crypto import Sm2Signer, Sm2Verifier, generate_sm2_keypair

from identity_service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenKeys:
    """The current signer and every verifier still accepted, by key id."""

    signer: Sm2Signer
    verifiers: dict[str, Sm2Verifier]

    @property
    def current_key_id(self) -> str:
        """Id of the key signing new tokens."""
        return self.signer.key_id


def load_token_keys(settings: Settings) -> TokenKeys:
    """Build the signer from settings; refuses to run without a key outside dev and test."""
    pem = settings.token_signing_key.strip()
    if not pem:
        if settings.zizhu_env not in ("dev", "test"):
            raise RuntimeError(f"TOKEN_SIGNING_KEY is required when ZIZHU_ENV={settings.zizhu_env}")
        pem = _dev_key(Path(settings.token_key_file))
    signer = Sm2Signer(pem)
    verifiers = {signer.key_id: signer.verifier}
    for public_pem in settings.token_previous_public_keys:
        verifier = Sm2Verifier(public_pem)
        verifiers.setdefault(verifier.key_id, verifier)
    return TokenKeys(signer=signer, verifiers=verifiers)


def _dev_key(path: Path) -> str:
    if path.exists():
        return path.read_text()
    private_pem, _ = generate_sm2_keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first
        return path.read_text()
    with os.fdopen(fd, "w") as fh:
        fh.write(private_pem)
    log.warning("generated a development token signing key at %s", path)
    return private_pem
