// `seqrun inspect`: a model's interface, op histogram, weight totals and IR text after passes (text or JSON).
#include <algorithm>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "ir/text.h"
#include "tools/seqrun/cli.h"

namespace seqrun::cli {

namespace {

// Totals over a graph and every nested body (Scan/Loop/If), so a model's whole op mix shows.
struct GraphSummary {
  std::map<std::string, int> op_counts;
  int num_nodes = 0;
  int64_t num_weights = 0;
  uint64_t weight_bytes = 0;
};

void summarize(const Graph& graph, GraphSummary& summary) {
  for (const Node* node : graph.nodes()) {
    ++summary.op_counts[node->op()];
    ++summary.num_nodes;
    for (const auto& [key, attr] : node->attrs()) {
      if (attr.type() == AttrType::Graph && attr.graph()) summarize(*attr.graph(), summary);
    }
  }
  for (const Value* v : graph.constants()) {
    ++summary.num_weights;
    summary.weight_bytes += v->constant().nbytes();
  }
}

nlohmann::ordered_json type_json(const Value& value) {
  const TensorType& type = value.type();
  nlohmann::ordered_json j;
  j["name"] = value.name();
  j["dtype"] = std::string(dtype_name(type.dtype()));
  if (type.has_rank()) {
    nlohmann::ordered_json dims = nlohmann::ordered_json::array();
    for (const Dim& d : type.dims()) {
      if (d.is_static()) {
        dims.push_back(d.value());
      } else if (d.is_symbol()) {
        dims.push_back(d.symbol_name());
      } else {
        dims.push_back(nullptr);
      }
    }
    j["shape"] = dims;
  } else {
    j["shape"] = nullptr;  // unknown rank
  }
  j["type"] = type.to_string();
  return j;
}

std::string pass_list(const std::vector<passes::PassReport>& reports) {
  if (reports.empty()) return "none";
  std::string s;
  for (const passes::PassReport& r : reports) {
    s += (s.empty() ? "" : ", ") + r.pass + (r.changed ? " (changed)" : " (no change)");
  }
  return s;
}

void print_text(const InspectArgs& args, const OpenedModel& model, const GraphSummary& summary,
                const std::string& ir_text) {
  const runtime::Session& session = *model.session;
  const Graph& graph = session.graph();
  std::printf("model: %s (%s)\n", args.model.c_str(), model.format.c_str());
  std::printf("inputs:\n");
  for (const Value* v : graph.inputs())
    std::printf("  %s: %s\n", v->name().c_str(), v->type().to_string().c_str());
  std::printf("outputs:\n");
  for (const Value* v : graph.outputs())
    std::printf("  %s: %s\n", v->name().c_str(), v->type().to_string().c_str());
  std::printf("ops: %d nodes\n", summary.num_nodes);
  size_t width = 0;
  for (const auto& [op, count] : summary.op_counts) width = std::max(width, op.size());
  for (const auto& [op, count] : summary.op_counts) {
    std::printf("  %-*s %d\n", static_cast<int>(width), op.c_str(), count);
  }
  std::printf("weights: %lld tensors, %llu bytes\n", static_cast<long long>(summary.num_weights),
              static_cast<unsigned long long>(summary.weight_bytes));
  std::printf("passes: %s\n", pass_list(session.pass_reports()).c_str());
  if (!session.metadata().empty()) {
    std::printf("metadata:\n");
    for (const auto& [key, value] : session.metadata()) std::printf("  %s: %s\n", key.c_str(), value.c_str());
  }
  std::printf("\n%s\n", ir_text.c_str());
}

void print_json(const InspectArgs& args, const OpenedModel& model, const GraphSummary& summary,
                const std::string& ir_text) {
  const runtime::Session& session = *model.session;
  const Graph& graph = session.graph();
  nlohmann::ordered_json j;
  j["model"] = args.model;
  j["format"] = model.format;
  j["inputs"] = nlohmann::ordered_json::array();
  for (const Value* v : graph.inputs()) j["inputs"].push_back(type_json(*v));
  j["outputs"] = nlohmann::ordered_json::array();
  for (const Value* v : graph.outputs()) j["outputs"].push_back(type_json(*v));
  j["num_nodes"] = summary.num_nodes;
  j["ops"] = summary.op_counts;
  j["weights"] = {{"count", summary.num_weights}, {"bytes", summary.weight_bytes}};
  j["passes"] = nlohmann::ordered_json::array();
  for (const passes::PassReport& r : session.pass_reports()) {
    j["passes"].push_back({{"name", r.pass}, {"changed", r.changed}});
  }
  j["metadata"] = session.metadata();
  j["ir"] = ir_text;
  std::printf("%s\n", j.dump(2).c_str());
}

}  // namespace

CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args) {
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a model's inputs, outputs, ops, weights and IR after passes");
  cmd->add_option("MODEL", args.model, "A .seqrun file or an .onnx file")->required();
  cmd->add_option("--format", args.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--weights,!--elide-weights", args.print_weights,
                "Print every constant's values in the IR text (default: elide constants over 16 elements)");
  add_pipeline_options(*cmd, args.pipeline);
  cmd->footer(
      "Examples:\n"
      "  seqrun inspect model.seqrun                 summary and IR after the default passes (-O1)\n"
      "  seqrun inspect model.onnx -O0               the imported graph, unoptimized\n"
      "  seqrun inspect model.onnx --passes canonicalize --weights\n"
      "  seqrun inspect model.seqrun --format json   one JSON object: inputs, outputs, ops, weights, passes, "
      "ir");
  return cmd;
}

int run_inspect(const InspectArgs& args, const GlobalArgs& global) {
  Result<OpenedModel> model = open_model(args.model, make_session_options(args.pipeline, global));
  if (!model) return report_error(model.status().message());
  GraphSummary summary;
  summarize(model->session->graph(), summary);
  PrintOptions print_options;
  print_options.print_weights = args.print_weights;
  const std::string ir_text = print_graph(model->session->graph(), print_options);
  if (args.format == "json") {
    print_json(args, *model, summary, ir_text);
  } else {
    print_text(args, *model, summary, ir_text);
  }
  return 0;
}

}  // namespace seqrun::cli
