// `seqrun inspect`: a model's interface, op histogram, weight totals and IR text after passes (text or JSON);
// with --memory / --placement, the execution plan for given input shapes instead of the ops and IR.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ir/text.h"
#include "tools/seqrun/approximate.h"
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
                const std::string& ir_text, const std::string& approximation) {
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
  if (!approximation.empty()) std::printf("%s\n", approximation.c_str());
  if (!session.metadata().empty()) {
    std::printf("metadata:\n");
    for (const auto& [key, value] : session.metadata()) {
      // Tokenizer vocabularies live in metadata and can be megabytes: show their size, not their bytes.
      constexpr size_t kMaxShown = 200;
      std::string shown = value.size() > kMaxShown ? "<" + std::to_string(value.size()) + " bytes>" : value;
      std::printf("  %s: %s\n", key.c_str(), shown.c_str());
    }
  }
  std::printf("\n%s\n", ir_text.c_str());
}

void print_json(const InspectArgs& args, const OpenedModel& model, const GraphSummary& summary,
                const std::string& ir_text, const std::string& approximation) {
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
  if (!approximation.empty()) j["approximation"] = approximation;
  j["ir"] = ir_text;
  std::printf("%s\n", j.dump(2).c_str());
}

// "NAME=1x1024" -> (NAME, [1, 1024]); "NAME=" binds a scalar. Dims are non-negative integers.
bool parse_input_shape(const std::string& spec, std::string& name, Shape& shape) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  name = spec.substr(0, eq);
  shape.clear();
  const std::string dims = spec.substr(eq + 1);
  if (dims.empty()) return true;
  size_t pos = 0;
  while (pos <= dims.size()) {
    size_t end = dims.find('x', pos);
    if (end == std::string::npos) end = dims.size();
    const std::string part = dims.substr(pos, end - pos);
    if (part.empty() || part.size() > 15 || part.find_first_not_of("0123456789") != std::string::npos)
      return false;
    shape.push_back(std::stoll(part));
    pos = end + 1;
  }
  return true;
}

// Binds every graph input: its declared dtype, and the shape given with --input-shape (needed when the
// declared shape has symbolic or unknown dims). Errors name the input.
Result<std::vector<runtime::InputSpec>> bind_input_shapes(const Graph& graph,
                                                          const std::map<std::string, Shape>& given) {
  std::set<std::string> names;
  std::string listed;
  for (const Value* v : graph.inputs()) {
    names.insert(v->name());
    listed += (listed.empty() ? "'" : ", '") + v->name() + "'";
  }
  for (const auto& [name, shape] : given) {
    if (names.count(name) == 0) {
      return make_error("--input-shape: the model has no input '{}' (its inputs: {})", name,
                        listed.empty() ? "none" : listed);
    }
  }
  std::vector<runtime::InputSpec> specs;
  for (const Value* v : graph.inputs()) {
    const TensorType& type = v->type();
    if (type.dtype() == DType::undefined) return make_error("input '{}' has no declared dtype", v->name());
    auto it = given.find(v->name());
    if (it != given.end()) {
      specs.push_back({type.dtype(), it->second});
    } else if (type.is_static()) {
      specs.push_back({type.dtype(), *type.static_shape()});
    } else {
      return make_error(
          "input '{}' has the shape {}: give concrete dims with --input-shape {}=DIMS (e.g. 1x1024)",
          v->name(), type.to_string(), v->name());
    }
  }
  return specs;
}

std::string binding_text(const Graph& graph, const std::vector<runtime::InputSpec>& specs) {
  std::string s;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string dims;
    for (int64_t d : specs[i].shape) dims += (dims.empty() ? "" : "x") + std::to_string(d);
    s += (s.empty() ? "" : ", ") + graph.inputs()[i]->name() + "=" + (dims.empty() ? "scalar" : dims);
  }
  return s.empty() ? "no inputs" : s;
}

std::string ratio_text(uint64_t arena, uint64_t lower_bound) {
  if (lower_bound == 0) return arena == 0 ? "1.00" : "n/a";
  return fmt::format("{:.2f}", static_cast<double>(arena) / static_cast<double>(lower_bound));
}

void print_memory_text(const runtime::MemoryReport& m) {
  std::printf("memory:\n");
  if (m.uses_reference_executor) {
    std::printf("  dynamic shapes: reference executor (%s)\n", m.fallback_reason.c_str());
    std::printf("  weights: %llu bytes\n", static_cast<unsigned long long>(m.weight_bytes));
    return;
  }
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("  arena: %llu bytes\n", u(m.arena_bytes));
  std::printf("  lower bound: %llu bytes\n", u(m.lower_bound_bytes));
  std::printf("  no-reuse sum: %llu bytes\n", u(m.no_reuse_bytes));
  std::printf("  arena / lower bound: %s\n", ratio_text(m.arena_bytes, m.lower_bound_bytes).c_str());
  std::printf("  weights: %llu bytes (read in place)\n", u(m.weight_bytes));
  std::printf("  pinned inputs: %llu bytes, pinned outputs: %llu bytes, workspace: %llu bytes\n",
              u(m.pinned_input_bytes), u(m.pinned_output_bytes), u(m.workspace_bytes));
  std::printf("  arena buffers: %d, in-place steps: %d, alias values: %d, device copies: %d\n",
              m.arena_buffers, m.inplace_steps, m.alias_values, m.copy_steps);
}

void print_placement_text(const std::vector<runtime::PlacementEntry>& placement) {
  std::printf("placement: %zu steps\n", placement.size());
  size_t op_width = 2, node_width = 4, backend_width = 7;
  for (const runtime::PlacementEntry& p : placement) {
    op_width = std::max(op_width, p.op.size());
    node_width = std::max(node_width, p.node.size());
    backend_width = std::max(backend_width, p.backend.size());
  }
  std::printf("  %-*s  %-*s  %-*s  %s\n", static_cast<int>(op_width), "op", static_cast<int>(node_width),
              "node", static_cast<int>(backend_width), "backend", "kernel");
  for (const runtime::PlacementEntry& p : placement) {
    std::printf("  %-*s  %-*s  %-*s  %s\n", static_cast<int>(op_width), p.op.c_str(),
                static_cast<int>(node_width), p.node.c_str(), static_cast<int>(backend_width),
                p.backend.c_str(), p.kernel.c_str());
  }
}

nlohmann::ordered_json memory_json(const runtime::MemoryReport& m) {
  nlohmann::ordered_json j;
  j["reference_executor"] = m.uses_reference_executor;
  if (m.uses_reference_executor) j["reason"] = m.fallback_reason;
  j["arena_bytes"] = m.arena_bytes;
  j["lower_bound_bytes"] = m.lower_bound_bytes;
  j["no_reuse_bytes"] = m.no_reuse_bytes;
  j["weight_bytes"] = m.weight_bytes;
  j["pinned_input_bytes"] = m.pinned_input_bytes;
  j["pinned_output_bytes"] = m.pinned_output_bytes;
  j["workspace_bytes"] = m.workspace_bytes;
  j["arena_buffers"] = m.arena_buffers;
  j["inplace_steps"] = m.inplace_steps;
  j["alias_values"] = m.alias_values;
  j["copy_steps"] = m.copy_steps;
  return j;
}

nlohmann::ordered_json placement_json(const std::vector<runtime::PlacementEntry>& placement) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const runtime::PlacementEntry& p : placement) {
    list.push_back({{"op", p.op}, {"node", p.node}, {"backend", p.backend}, {"kernel", p.kernel}});
  }
  return list;
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
  cmd->add_flag(
      "--memory", args.memory,
      "Plan execution for the input shapes and print the arena size, its lower bound and the no-reuse "
      "sum (instead of the ops and IR)");
  cmd->add_flag("--placement", args.placement,
                "Plan execution for the input shapes and print each node's backend and kernel");
  cmd->add_option("--input-shape", args.input_shapes,
                  "Bind input NAME to concrete dims for --memory/--placement (repeat per input; required for "
                  "inputs with symbolic dims)")
      ->type_name("NAME=DIMS")
      ->allow_extra_args(false);
  add_pipeline_options(*cmd, args.pipeline);
  add_approximate_option(*cmd, args.approximate);
  cmd->add_option(
         "-i,--input", args.inputs,
         "With --approximate: measure on the array in FILE.npy as input NAME (repeat per input; default: "
         "N(0, 1) inputs of the static input shapes)")
      ->type_name("NAME=FILE.npy")
      ->allow_extra_args(false);
  cmd->footer(
      "Examples:\n"
      "  seqrun inspect model.seqrun                 summary and IR after the default passes (-O1)\n"
      "  seqrun inspect model.onnx --memory --input-shape input_ids=1x1024   arena vs lower bound\n"
      "  seqrun inspect model.onnx --placement --input-shape x=2x4          backend and kernel per node\n"
      "  seqrun inspect model.onnx -O0               the imported graph, unoptimized\n"
      "  seqrun inspect model.onnx --passes canonicalize --weights\n"
      "  seqrun inspect model.seqrun --format json   one JSON object: inputs, outputs, ops, weights, passes, "
      "ir\n"
      "  seqrun inspect model.onnx --approximate favor:64 -i x=x.npy   FAVOR+ graph, its error and speed-up");
  return cmd;
}

int run_inspect(const InspectArgs& args, const GlobalArgs& global) {
  std::map<std::string, Shape> shapes;
  for (const std::string& spec : args.input_shapes) {
    std::string name;
    Shape shape;
    if (!parse_input_shape(spec, name, shape)) {
      return report_error(fmt::format("--input-shape '{}': expected NAME=DIMS like x=1x1024", spec),
                          kExitUsage);
    }
    if (!shapes.emplace(name, shape).second) {
      return report_error(fmt::format("--input-shape '{}': input '{}' is given twice", spec, name),
                          kExitUsage);
    }
  }
  if (!shapes.empty() && !args.memory && !args.placement) {
    return report_error("--input-shape only applies to --memory and --placement", kExitUsage);
  }
  if (!args.inputs.empty() && args.approximate.empty()) {
    return report_error("--input only applies to --approximate", kExitUsage);
  }
  runtime::SessionOptions options = make_session_options(args.pipeline, global);
  runtime::SessionOptions shown_options = options;
  if (!args.approximate.empty()) {  // the graph shown is the approximated one
    Result<runtime::SessionOptions> approximated = approximate_session_options(options, args.approximate);
    if (!approximated) return report_error(approximated.status().message(), kExitUsage);
    shown_options = *approximated;
  }
  Result<OpenedModel> model = open_model(args.model, shown_options);
  if (!model) return report_error(model.status().message());
  if (args.memory || args.placement) {
    const runtime::Session& session = *model->session;
    Result<std::vector<runtime::InputSpec>> specs = bind_input_shapes(session.graph(), shapes);
    if (!specs) return report_error(specs.status().message());
    Result<std::shared_ptr<runtime::ExecutionPlan>> plan = session.plan_for(*specs);
    if (!plan) return report_error(args.model + ": " + plan.status().message());
    const runtime::MemoryReport& report = (*plan)->memory_report();
    if (args.format == "json") {
      nlohmann::ordered_json j;
      j["model"] = args.model;
      j["format"] = model->format;
      j["input_shapes"] = nlohmann::ordered_json::object();
      for (size_t i = 0; i < specs->size(); ++i)
        j["input_shapes"][session.graph().inputs()[i]->name()] = (*specs)[i].shape;
      if (args.memory) j["memory"] = memory_json(report);
      if (args.placement) j["placement"] = placement_json((*plan)->placement());
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("model: %s (%s)\n", args.model.c_str(), model->format.c_str());
    std::printf("input shapes: %s\n", binding_text(session.graph(), *specs).c_str());
    if (args.memory) print_memory_text(report);
    if (args.placement) print_placement_text((*plan)->placement());
    return 0;
  }
  std::string approximation;
  if (!args.approximate.empty()) {
    Result<std::map<std::string, Tensor>> inputs =
        args.inputs.empty() ? random_inputs(model->session->graph()) : read_named_inputs(args.inputs);
    if (!inputs) return report_error(inputs.status().message());
    Result<OpenedModel> exact = open_model(args.model, options);
    if (!exact) return report_error(exact.status().message());
    Result<std::string> report =
        approximation_report(args.approximate, *exact->session, *model->session, *inputs);
    if (!report) return report_error(args.model + ": " + report.status().message());
    approximation = *report + (args.inputs.empty() ? " on N(0, 1) inputs" : "");
  }
  GraphSummary summary;
  summarize(model->session->graph(), summary);
  PrintOptions print_options;
  print_options.print_weights = args.print_weights;
  const std::string ir_text = print_graph(model->session->graph(), print_options);
  if (args.format == "json") {
    print_json(args, *model, summary, ir_text, approximation);
  } else {
    print_text(args, *model, summary, ir_text, approximation);
  }
  return 0;
}

}  // namespace seqrun::cli
