"""The MLS (RFC 9420) messages a DAVE voice gateway writes as its group's *external sender*.

Discord's voice gateway is not a member of a call's MLS group: it may only propose. It announces its
signing key (``ExternalSender``, DAVE opcode 25) and then proposes who joins and leaves (``Add`` and
``Remove`` proposals in ``PublicMessage``s signed with that key, opcode 27); the members commit them.
This module writes those structures byte for byte in MLS's TLS presentation language, for DAVE's
ciphersuite 2 (MLS_128_DHKEMP256_AES128GCM_SHA256_P256: ECDSA P-256 with SHA-256, DER signatures),
signed with ``cryptography``. ``davey`` (openmls inside) checks every one of them as a client does: a
wrong signature is ``InvalidSignature``, another group is ``WrongGroupId``.

It also reads the one thing the gateway must read in a member's answer (opcode 28): where its commit
ends and the optional Welcome that follows begins (``split_commit_welcome``).
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MLS10 = 1  # ProtocolVersion mls10
PUBLIC_MESSAGE = 1  # WireFormat mls_public_message
SENDER_MEMBER, SENDER_EXTERNAL = 1, 2  # SenderType
CONTENT_PROPOSAL, CONTENT_COMMIT = 2, 3  # ContentType
PROPOSAL_ADD, PROPOSAL_REMOVE = 1, 2  # ProposalType
CREDENTIAL_BASIC = 1  # CredentialType
LEAF_SOURCE_KEY_PACKAGE, LEAF_SOURCE_UPDATE, LEAF_SOURCE_COMMIT = 1, 2, 3  # LeafNodeSource


def varint(n: int) -> bytes:
    """RFC 9420 section 2.1.2: a vector's length in 1, 2 or 4 bytes (the top two bits say which)."""
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return struct.pack(">H", n | 0x4000)
    if n < 1 << 30:
        return struct.pack(">I", n | 0x8000_0000)
    raise ValueError(f"a vector of {n} bytes is too long for MLS")


def vector(data: bytes) -> bytes:
    """``opaque data<V>``: the length, then the bytes."""
    return varint(len(data)) + data


def group_id(channel_id: int) -> bytes:
    """DAVE's MLS group id: the voice channel's id as 8 big-endian bytes."""
    return struct.pack(">Q", channel_id)


class ExternalSender:
    """The voice gateway's signing identity (a P-256 key) and what it signs."""

    def __init__(self, identity: bytes = b"fakediscord voice gateway") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = self._key.public_key().public_bytes(serialization.Encoding.X962,
                                                              serialization.PublicFormat.UncompressedPoint)
        self.identity = identity

    def package(self) -> bytes:
        """``struct { SignaturePublicKey signature_key; Credential credential; } ExternalSender``:
        the body of DAVE opcode 25 (a basic credential naming the gateway)."""
        return vector(self.public_key) + struct.pack(">H", CREDENTIAL_BASIC) + vector(self.identity)

    def sign(self, label: bytes, content: bytes) -> bytes:
        """SignWithLabel (RFC 9420 section 5.1.2): ECDSA over ``SignContent`` {"MLS 1.0 " + label, content}."""
        sign_content = vector(b"MLS 1.0 " + label) + vector(content)
        return self._key.sign(sign_content, ec.ECDSA(hashes.SHA256()))  # DER, as TLS 1.3 and openmls write it

    def proposal(self, channel_id: int, epoch: int, body: bytes) -> bytes:
        """An ``MLSMessage`` carrying a ``PublicMessage`` with one proposal from external sender 0.

        ``FramedContent`` {group_id, epoch, sender, authenticated_data, content_type, proposal} is signed as
        ``FramedContentTBS`` (version, wire format, the content; no group context for an external sender);
        a proposal has no confirmation tag, and an external sender's message no membership tag."""
        content = (vector(group_id(channel_id)) + struct.pack(">Q", epoch)
                   + struct.pack(">BI", SENDER_EXTERNAL, 0) + vector(b"") + bytes([CONTENT_PROPOSAL]) + body)
        header = struct.pack(">HH", MLS10, PUBLIC_MESSAGE)
        signature = self.sign(b"FramedContentTBS", header + content)
        return header + content + vector(signature)

    def add(self, channel_id: int, epoch: int, key_package: bytes) -> bytes:
        """An Add proposal for a member's ``KeyPackage`` (what its client sent in opcode 26)."""
        return self.proposal(channel_id, epoch, struct.pack(">H", PROPOSAL_ADD) + key_package)

    def remove(self, channel_id: int, epoch: int, leaf_index: int) -> bytes:
        """A Remove proposal for the member at ``leaf_index`` of the group's tree."""
        return self.proposal(channel_id, epoch, struct.pack(">HI", PROPOSAL_REMOVE, leaf_index))


def proposals_payload(messages: list[bytes], revoke: bool = False) -> bytes:
    """The body of DAVE opcode 27: the operation (0 append, 1 revoke), then ``MLSMessage proposals<V>``."""
    return bytes([1 if revoke else 0]) + vector(b"".join(messages))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("MLS message ends early")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self) -> bytes:
        first = self.data[self.at] if self.at < len(self.data) else 0
        size = 1 << (first >> 6)
        if size == 8:
            raise ValueError("invalid MLS vector length")
        n = self.uint(size) & ((1 << (8 * size - 2)) - 1)
        return self.take(n)


def _skip_leaf_node(r: _Reader) -> None:
    """``LeafNode`` (RFC 9420 section 7.2), skipped field by field."""
    r.vector()  # encryption_key
    r.vector()  # signature_key
    credential_type = r.uint(2)
    if credential_type == CREDENTIAL_BASIC:
        r.vector()  # identity
    else:  # x509: certificates<V>
        r.vector()
    for _ in range(5):  # capabilities: versions, cipher_suites, extensions, proposals, credentials
        r.vector()
    source = r.uint(1)
    if source == LEAF_SOURCE_KEY_PACKAGE:
        r.take(16)  # lifetime: not_before, not_after
    elif source == LEAF_SOURCE_COMMIT:
        r.vector()  # parent_hash
    r.vector()  # extensions
    r.vector()  # signature


def split_commit_welcome(data: bytes) -> tuple[bytes, bytes | None]:
    """Opcode 28's body is a commit (``MLSMessage``) then, when it adds members, their ``Welcome``: the
    two apart. The commit is read up to its end (RFC 9420 sections 6, 12.4): a ``PublicMessage`` from a
    member, its ``Commit`` (proposals, an optional ``UpdatePath``), signature, confirmation and
    membership tags."""
    r = _Reader(data)
    if (r.uint(2), r.uint(2)) != (MLS10, PUBLIC_MESSAGE):
        raise ValueError("the commit is not an MLS 1.0 public message")
    r.vector()  # group_id
    r.take(8)  # epoch
    sender_type = r.uint(1)
    if sender_type in (SENDER_MEMBER, SENDER_EXTERNAL):
        r.take(4)
    r.vector()  # authenticated_data
    if r.uint(1) != CONTENT_COMMIT:
        raise ValueError("opcode 28 must start with a commit")
    r.vector()  # proposals: ProposalOrRef<V>
    if r.uint(1):  # optional<UpdatePath>
        _skip_leaf_node(r)
        r.vector()  # nodes: UpdatePathNode<V>
    r.vector()  # signature
    r.vector()  # confirmation_tag
    if sender_type == SENDER_MEMBER:
        r.vector()  # membership_tag
    rest = data[r.at:]
    return data[:r.at], rest or None
