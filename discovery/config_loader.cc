#include "discovery/config_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "discovery/yaml_schema_check.h"
#include "discovery/yaml_to_json.h"
#include "google/protobuf/util/json_util.h"

namespace ferry::discovery {

absl::Status ParseConfigText(absl::string_view yaml_text, absl::string_view source_name,
                             google::protobuf::Message* config, ConfigLocations* locations) {
  config->Clear();
  if (yaml_text.size() > kMaxConfigBytes) {
    return ConfigError(source_name, {}, "",
                       absl::StrCat("is ", yaml_text.size(), " bytes; a config is at most ",
                                    kMaxConfigBytes, " bytes"));
  }
  absl::StatusOr<YAML::Node> root = ParseYamlDocument(yaml_text, source_name);
  if (!root.ok()) return root.status();
  if (absl::Status s =
          CheckYamlAgainstSchema(*root, *config->GetDescriptor(), source_name, locations);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> json = YamlToJson(*root, source_name, /*null_as_empty_object=*/true);
  if (!json.ok()) return json.status();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  options.case_insensitive_enum_parsing = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(*json, config, options);
  if (!parsed.ok()) {
    // The schema check lets through only what JSON parsing accepts, save for well-known types
    // it leaves to the parser; their errors carry no path.
    return ConfigError(source_name, {}, "",
                       absl::StrCat("does not fit ", config->GetDescriptor()->name(), ": ",
                                    std::string(parsed.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::ErrnoToStatus(error, message);
  }
  std::string text;
  absl::Status status;
  struct stat info;
  if (fstat(fd, &info) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot stat"));
  } else if (S_ISDIR(info.st_mode)) {
    status = absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a config file"));
  } else {
    char buffer[64 * 1024];
    while (true) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot read"));
        break;
      }
      if (n == 0) break;
      text.append(buffer, static_cast<size_t>(n));
      if (text.size() > kMaxConfigBytes) {
        status = absl::InvalidArgumentError(absl::StrCat(path, ": is larger than ", kMaxConfigBytes,
                                                         " bytes; a config is a few kilobytes"));
        break;
      }
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return text;
}

namespace config_loader_internal {

absl::Status LoadConfigTextInto(
    absl::string_view yaml_text, absl::string_view source_name, google::protobuf::Message* config,
    absl::FunctionRef<absl::Status(const google::protobuf::Message&)> validate) {
  ConfigLocations locations;
  if (absl::Status s = ParseConfigText(yaml_text, source_name, config, &locations); !s.ok()) {
    return s;
  }
  const absl::Status invalid = validate(*config);
  if (invalid.ok()) return invalid;
  // "<path>: <reason>" -> placed at the line where <path> (or its nearest parent) is written.
  const absl::string_view message = invalid.message();
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos) return ConfigError(source_name, {}, "", message);
  const absl::string_view path = message.substr(0, colon);
  return ConfigError(source_name, locations.Find(path), path, message.substr(colon + 2));
}

}  // namespace config_loader_internal
}  // namespace ferry::discovery
