// Checks a YAML tree against a protobuf message schema before it is converted, so that the
// first wrong field is reported with its exact path and line.
//
// JsonStringToMessage (used for the real conversion) is strict but its messages do not carry a
// clean field path; this walk does, over the message Descriptor: field names in both proto
// (`admin_listen`) and JSON (`adminListen`) form, nested messages, repeated fields, map fields,
// enums by value name, google.protobuf.Duration as a proto-JSON string ("5s", "0.25s"), the
// scalar types (a quoted "8080" is a string, not a number), one member per oneof, no field
// given twice. Other google.protobuf well-known types are left to JsonStringToMessage.
// `!disabled` list items and field values are skipped (yaml_to_json.h).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "discovery/config_error.h"
#include "google/protobuf/descriptor.h"
#include "yaml-cpp/yaml.h"

namespace ferry::discovery {

// OK when `root` (a mapping, or null for an empty file) fits `descriptor`; else the first
// problem as INVALID_ARGUMENT "<source>:<line>:<column>: <path>: <reason>" (config_error.h),
// where the path uses proto field names and 0-based indices ("services[1].health_check").
// When `locations` is not null, it receives where every field and list item checked is
// written, keyed by that path. Pure; thread-compatible.
absl::Status CheckYamlAgainstSchema(const YAML::Node& root,
                                    const google::protobuf::Descriptor& descriptor,
                                    absl::string_view source, ConfigLocations* locations);

}  // namespace ferry::discovery
