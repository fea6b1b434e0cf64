// Chrome/Perfetto trace output for Profile (JSON "traceEvents" of complete "X" events).
#include "runtime/profile.h"

#include <fstream>

#include <nlohmann/json.hpp>

namespace seqrun::runtime {

namespace {

nlohmann::ordered_json shapes_json(const std::vector<Shape>& shapes) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const Shape& s : shapes) list.push_back(s);
  return list;
}

}  // namespace

std::string Profile::to_chrome_trace() const {
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const ProfileEvent& e : events_) {
    nlohmann::ordered_json j;
    j["name"] = e.op;
    j["cat"] = e.category.empty() ? "node" : e.category;
    j["ph"] = "X";
    j["ts"] = e.start_us;
    j["dur"] = e.dur_us;
    j["pid"] = 1;
    j["tid"] = 1;
    j["args"] = {{"node", e.node},
                 {"kernel", e.kernel},
                 {"input_shapes", shapes_json(e.input_shapes)},
                 {"output_shapes", shapes_json(e.output_shapes)}};
    events.push_back(std::move(j));
  }
  // One event per line: small enough to read, diff and grep, and still one JSON object.
  std::string out = "{\"traceEvents\": [\n";
  for (size_t i = 0; i < events.size(); ++i) out += events[i].dump() + (i + 1 < events.size() ? ",\n" : "\n");
  out += "], \"displayTimeUnit\": \"ms\"}";
  return out;
}

Status Profile::write_chrome_trace(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error("{}: cannot open the profile for writing", path);
  out << to_chrome_trace() << "\n";
  out.close();
  if (!out) return make_error("{}: writing the profile failed", path);
  return Status::ok();
}

}  // namespace seqrun::runtime
