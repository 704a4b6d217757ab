// ThreadSanitizer suppressions for --config=tsan, linked into every binary and
// test of that configuration (.bazelrc: --custom_malloc points here), so tests
// and the processes they start all carry them without any file to find.
//
// Debian's gRPC, Abseil, protobuf and OpenSSL are not built with
// -fsanitize=thread, so TSan cannot see their internal synchronization and
// reports races inside them (and inside our generated protobuf code, whose map
// fields take a different layout under TSan than the uninstrumented libprotobuf
// expects). Races in Ferry's own code are still reported: nothing here names a
// Ferry source file.

extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so*\n"
         "race:libgpr.so*\n"
         "race:libgrpc++.so*\n"
         "race:libabsl_*\n"
         "race:libprotobuf.so*\n"
         "race:libcrypto.so*\n"
         "race:libssl.so*\n"
         "race:libproto_Sferry*\n"
         "race:absl::*::synchronization_internal::GraphCycles\n"
         "called_from_lib:libgrpc.so.29\n"
         "called_from_lib:libgpr.so.29\n"
         "called_from_lib:libgrpc++.so.1.51\n"
         "called_from_lib:libcrypto.so.3\n"
         "called_from_lib:libssl.so.3\n"
         "called_from_lib:libabsl_graphcycles_internal.so.20220623\n";
}
