"""Generate Python, gRPC and mypy stubs for every .proto under protos/.

Usage: python scripts/gen_protos.py [--out DIR]   (DIR defaults to protos/)

Runs grpc_tools.protoc with the mypy-protobuf plugins of the running interpreter's environment,
so the committed code only changes when the pinned tools or the .proto files change.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files(proto_root: Path = PROTO_ROOT) -> list[str]:
    """Return every .proto under proto_root as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))


def plugin_path(name: str) -> Path:
    """Return the protoc plugin `name` installed next to the running interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"protoc plugin {name} not found at {path}: install mypy-protobuf")
    return path


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[str]:
    """Generate code for every .proto under proto_root into out_dir; return the protos used."""
    files = proto_files(proto_root)
    if not files:
        raise SystemExit(f"no .proto files under {proto_root}")
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={plugin_path('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_path('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *files,
    ]
    # protoc resolves the -I paths itself; passing files relative to proto_root keeps absolute
    # paths out of the generated code.
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return files


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and generate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=PROTO_ROOT, help="output directory (default: protos/)"
    )
    args = parser.parse_args(argv)
    files = generate(args.out.resolve())
    print(f"generated code for {len(files)} .proto files into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
