"""ferry_proto_library: .proto files compiled with Debian's protoc and grpc_cpp_plugin.

    ferry_proto_library(
        name = "routes_proto",
        srcs = ["routes.proto"],
        deps = [":common_proto"],   # other ferry_proto_library targets
        grpc = True,                # also generate service stubs
        alwayslink = False,         # link even when unreferenced (reflection)
    )

makes `<name>` (a cc_library with the messages and, when grpc is set, the
service stubs) and `<name>_files` (the .proto sources, for dependents' imports).
Imports are rooted at `proto/`: `import "ferry/v1/common.proto";` and
`#include "ferry/v1/common.pb.h"`. Well-known types come from /usr/include.
"""

_PROTO_ROOT = "proto"

def ferry_proto_library(name, srcs, deps = [], grpc = False, alwayslink = False, visibility = None):
    stems = [s[:-len(".proto")] for s in srcs]
    pkg = native.package_name()
    if not pkg.startswith(_PROTO_ROOT + "/"):
        fail("ferry_proto_library must live under //proto")
    hdrs = [s + ".pb.h" for s in stems]
    cc_srcs = [s + ".pb.cc" for s in stems]
    if grpc:
        hdrs += [s + ".grpc.pb.h" for s in stems]
        cc_srcs += [s + ".grpc.pb.cc" for s in stems]

    native.filegroup(
        name = name + "_files",
        srcs = srcs + [d + "_files" for d in deps],
        visibility = visibility,
    )

    cmd = "protoc -I%s --cpp_out=$(GENDIR)/%s" % (_PROTO_ROOT, _PROTO_ROOT)
    if grpc:
        cmd += (" --grpc_out=$(GENDIR)/%s --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)" %
                _PROTO_ROOT)
    cmd += " " + " ".join(["%s/%s" % (pkg, s) for s in srcs])

    native.genrule(
        name = name + "_gen",
        srcs = [name + "_files"],
        outs = hdrs + cc_srcs,
        cmd = cmd,
        message = "protoc %s" % name,
    )

    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        strip_include_prefix = "/" + _PROTO_ROOT,
        # Generated code is not ours to keep warning-free.
        copts = ["-Wno-error", "-Wno-unused-parameter"],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpcpp"] if grpc else []),
        # For descriptors that must be in the binary's pool (for reflection)
        # even when no code refers to them.
        alwayslink = alwayslink,
        visibility = visibility,
    )
