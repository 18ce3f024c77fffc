"""The committed contracts: generated code is current, importable, and follows the conventions."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "protos"
PACKAGE_ROOT = PROTO_ROOT / "zizhu_contracts"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
SERVICES = {
    "identity": "IdentityService",
    "roster": "RosterService",
    "aid": "AidService",
    "funding": "FundingService",
    "reconcile": "ReconcileService",
}
EVENT_META = "zizhu_contracts.common.v1.EventMeta"
# Events defined outside an events.proto: the audit event every producer publishes.
SHARED_EVENTS = {"zizhu_contracts.common.v1.ActionAudited"}
SUBJECT = re.compile(r"^// Subject: ([a-z]+)\.([a-z_]+)\.([a-z_]+)$")


def generated_files(root: Path) -> dict[str, bytes]:
    """Map each generated file under root (relative POSIX path) to its content."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    }


def proto_stem(generated: str) -> str:
    """Return the .proto path a generated file comes from."""
    for suffix in sorted(GENERATED_SUFFIXES, key=len, reverse=True):
        if generated.endswith(suffix):
            return generated[: -len(suffix)] + ".proto"
    raise ValueError(generated)


def module_names() -> list[str]:
    """Import names of every committed generated Python module."""
    return sorted(
        p.relative_to(PROTO_ROOT).with_suffix("").as_posix().replace("/", ".")
        for p in PACKAGE_ROOT.rglob("*.py")
        if p.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    )


def file_descriptors() -> list[FileDescriptor]:
    """Descriptors of every committed .proto, loaded through the generated modules."""
    return [
        importlib.import_module(name).DESCRIPTOR for name in module_names() if name.endswith("_pb2")
    ]


def all_messages(messages: Iterable[Descriptor]) -> Iterator[Descriptor]:
    """Messages and their nested messages, depth first."""
    for message in messages:
        yield message
        yield from all_messages(message.nested_types)


def all_enums(fd: FileDescriptor) -> Iterator[EnumDescriptor]:
    """Top-level and nested enums of a file."""
    yield from fd.enum_types_by_name.values()
    for message in all_messages(fd.message_types_by_name.values()):
        yield from message.enum_types


def test_committed_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = generated_files(tmp_path)
    committed = generated_files(PROTO_ROOT)
    assert fresh, "the generator produced nothing"

    orphans = sorted(f for f in committed if not (PROTO_ROOT / proto_stem(f)).exists())
    assert not orphans, f"generated files without a .proto: {orphans}"
    missing = sorted(set(fresh) - set(committed))
    assert not missing, f"not committed (run scripts/gen_protos.py): {missing}"
    stale = sorted(f for f in fresh if committed[f] != fresh[f])
    assert not stale, f"out of date (run scripts/gen_protos.py): {stale}"
    extra = sorted(set(committed) - set(fresh))
    assert not extra, f"committed but no longer generated: {extra}"


@pytest.mark.parametrize("module", module_names())
def test_every_generated_module_imports(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize(("svc", "service"), sorted(SERVICES.items()))
def test_each_service_has_its_descriptor_stub_and_servicer(svc: str, service: str) -> None:
    pb2 = importlib.import_module(f"zizhu_contracts.{svc}.v1.{svc}_pb2")
    pb2_grpc = importlib.import_module(f"zizhu_contracts.{svc}.v1.{svc}_pb2_grpc")

    descriptor = pb2.DESCRIPTOR.services_by_name[service]
    assert descriptor.full_name == f"zizhu_contracts.{svc}.v1.{service}"
    assert descriptor.methods
    assert hasattr(pb2_grpc, f"{service}Stub")
    assert hasattr(pb2_grpc, f"{service}Servicer")
    assert hasattr(pb2_grpc, f"add_{service}Servicer_to_server")


def test_every_rpc_has_its_own_request_and_response() -> None:
    wrong = []
    for fd in file_descriptors():
        for service in fd.services_by_name.values():
            for method in service.methods:
                if method.input_type.name != f"{method.name}Request":
                    wrong.append(f"{service.name}.{method.name} takes {method.input_type.name}")
                if method.output_type.name != f"{method.name}Response":
                    wrong.append(f"{service.name}.{method.name} returns {method.output_type.name}")
    assert not wrong


def test_every_enum_starts_with_unspecified_zero() -> None:
    wrong = [
        enum.full_name
        for fd in file_descriptors()
        for enum in all_enums(fd)
        if enum.values[0].number != 0 or not enum.values[0].name.endswith("_UNSPECIFIED")
    ]
    assert not wrong


def test_every_event_embeds_event_meta_as_field_1() -> None:
    events = [
        message
        for fd in file_descriptors()
        for message in fd.message_types_by_name.values()
        if fd.name.endswith("/events.proto") or message.full_name in SHARED_EVENTS
    ]
    assert len(events) > len(SHARED_EVENTS)
    wrong = []
    for message in events:
        meta = message.fields_by_number.get(1)
        if (
            meta is None
            or meta.name != "meta"
            or meta.type != FieldDescriptor.TYPE_MESSAGE
            or meta.message_type is None
            or meta.message_type.full_name != EVENT_META
        ):
            wrong.append(message.full_name)
    assert not wrong


@pytest.mark.parametrize("svc", sorted(SERVICES))
def test_every_event_names_its_subject_under_its_producer(svc: str) -> None:
    lines = (PACKAGE_ROOT / svc / "v1" / "events.proto").read_text(encoding="utf-8").splitlines()
    subjects: list[str] = []
    for number, line in enumerate(lines):
        match = re.match(r"^message (\w+) \{$", line)
        if not match:
            continue
        comment = []
        for above in reversed(lines[:number]):
            if not above.startswith("//"):
                break
            comment.append(above)
        found = [m for c in comment if (m := SUBJECT.match(c))]
        assert len(found) == 1, f"{match.group(1)} has no '// Subject: ...' comment"
        producer, _aggregate, _event = found[0].groups()
        assert producer == svc, f"{match.group(1)}: subject of another producer"
        subjects.append(found[0].string.removeprefix("// Subject: "))
    assert subjects
    assert len(set(subjects)) == len(subjects), "two events share a subject"


def test_money_fields_are_int64_fen() -> None:
    wrong = []
    for fd in file_descriptors():
        for message in all_messages(fd.message_types_by_name.values()):
            for field in message.fields:
                if field.type in (FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_MESSAGE):
                    continue
                money = "amount" in field.name or field.name.endswith("_fen")
                if money and not (
                    field.name.endswith("_fen") and field.type == FieldDescriptor.TYPE_INT64
                ):
                    wrong.append(f"{message.full_name}.{field.name}")
    assert not wrong
