// Checkpoint import: tiny Hugging Face / state-spaces checkpoints (tests/reference/gen_hf_checkpoints.py)
// against the logits PyTorch computed, at -O0 and -O1; hostile safetensors files and shard indexes.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ir/serialize.h"
#include "models/builders.h"
#include "models/hf_config.h"
#include "models/safetensors.h"
#include "runtime/npy.h"
#include "runtime/session.h"

using namespace seqrun;
using seqrun::models::Checkpoint;
using seqrun::runtime::Session;
using seqrun::runtime::SessionOptions;
namespace fs = std::filesystem;

namespace {

const std::string kHfData = std::string(SEQRUN_TEST_DATA) + "/hf/";

// Logits match when |got - want| <= 1e-4 · max(1, |want|) everywhere: absolute below magnitude 1,
// relative above (the reference logits reach |x| ≈ 37).
constexpr double kTolerance = 1e-4;

double max_scaled_error(const Tensor& got, const Tensor& want) {
  const std::vector<float> a = got.to_f32_vector();
  const std::vector<float> b = want.to_f32_vector();
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::fabs(double{b[i]}));
    worst = std::max(worst, std::isnan(err) ? 1e30 : err);
  }
  return worst;
}

Tensor run_session(const Session& session, const Tensor& ids) {
  auto out = session.run(std::vector<Tensor>{ids});
  INFO(out.status().message());
  REQUIRE(out.is_ok());
  REQUIRE(out.value().size() == 1);
  return out.value()[0];
}

std::unique_ptr<Session> session_for(const std::string& dir, int opt_level,
                                     runtime::ExecutorKind executor = runtime::ExecutorKind::planned) {
  auto built = models::build_from_checkpoint_dir(dir);
  INFO(built.status().message());
  REQUIRE(built.is_ok());
  SessionOptions options;
  options.opt_level = opt_level;
  options.executor = executor;
  auto session = Session::from_graph(std::move(built).value(), options);
  INFO(session.status().message());
  REQUIRE(session.is_ok());
  return std::move(session).value();
}

// Loads the variant, runs it at -O0 and -O1, and checks both against PyTorch's logits and each other.
void check_variant(const std::string& name) {
  const std::string dir = kHfData + name;
  auto ids = runtime::read_npy(dir + "/input_ids.npy");
  auto want = runtime::read_npy(dir + "/logits.npy");
  REQUIRE(ids.is_ok());
  REQUIRE(want.is_ok());
  auto s0 = session_for(dir, 0);
  auto s1 = session_for(dir, 1);
  auto sref = session_for(dir, 0, runtime::ExecutorKind::reference);
  Tensor o0 = run_session(*s0, ids.value());
  Tensor o1 = run_session(*s1, ids.value());
  Tensor ref = run_session(*sref, ids.value());
  REQUIRE(o0.dtype() == DType::f32);
  REQUIRE(o0.shape() == want.value().shape());
  REQUIRE(o1.shape() == want.value().shape());
  const double e0 = max_scaled_error(o0, want.value());
  const double e1 = max_scaled_error(o1, want.value());
  const double e01 = max_scaled_error(o1, o0);
  const double eref = max_scaled_error(ref, want.value());
  INFO(name << ": -O0 error " << e0 << ", -O1 error " << e1 << ", -O0 vs -O1 " << e01
            << ", reference executor error " << eref);
  CHECK(eref <= kTolerance);
  CHECK(e0 <= kTolerance);
  CHECK(e1 <= kTolerance);
  CHECK(e01 <= kTolerance);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors image: u64 LE length, the header text as given, then `data`.
std::vector<uint8_t> safetensors_bytes(const std::string& header, const std::vector<uint8_t>& data,
                                       uint64_t length_override = UINT64_MAX) {
  const uint64_t n = length_override == UINT64_MAX ? header.size() : length_override;
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

Result<models::SafetensorsFile> parse(const std::vector<uint8_t>& bytes) {
  auto keep = std::make_shared<std::vector<uint8_t>>(bytes);
  return models::parse_safetensors(keep->data(), keep->size(), "hostile.safetensors", keep);
}

// The error of parsing `bytes`; fails the test when parsing succeeds.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto r = parse(bytes);
  REQUIRE_FALSE(r.is_ok());
  return r.status().message();
}

// A scratch folder removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("seqrun_hf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void copy_dir(const std::string& from, const fs::path& to) {
  for (const auto& e : fs::directory_iterator(from)) fs::copy_file(e.path(), to / e.path().filename());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

// ---- the reference checkpoints -----------------------------------------------------------------------

TEST_CASE("gpt2 fp32 checkpoint matches PyTorch at -O0 and -O1", "[hf]") {
  check_variant("gpt2_fp32");
}

TEST_CASE("llama fp16 sharded checkpoint (tied, GQA 4/2) matches PyTorch", "[hf]") {
  check_variant("llama_fp16_sharded");
}

TEST_CASE("llama bf16 untied checkpoint (GQA 6/2, llama3 rope scaling) matches PyTorch", "[hf]") {
  check_variant("llama_bf16_untied");
}

TEST_CASE("mamba fp32 HF-layout checkpoint matches PyTorch", "[hf]") {
  check_variant("mamba_fp32");
}

TEST_CASE("mamba state-spaces-layout checkpoint (LayerNorm, padded vocab) matches PyTorch", "[hf]") {
  check_variant("mamba_state_spaces");
}

TEST_CASE("built graphs have the documented interface and metadata", "[hf]") {
  struct Expect {
    const char* name;
    const char* arch;
    const char* vocab;
    const char* dtype;
    const char* eos;
  };
  for (const Expect& e : {Expect{"gpt2_fp32", "gpt2", "96", "f32", "2"},
                          Expect{"llama_fp16_sharded", "llama", "112", "f16", "2"},
                          Expect{"llama_bf16_untied", "llama", "80", "bf16", "3,4"},
                          Expect{"mamba_fp32", "mamba", "80", "f32", "0"},
                          Expect{"mamba_state_spaces", "mamba", "80", "f32", ""}}) {
    INFO(e.name);
    auto built = models::build_model_from_checkpoint_dir(kHfData + e.name);
    REQUIRE(built.is_ok());
    const Graph& g = *built.value().graph;
    REQUIRE(g.inputs().size() == 1);
    CHECK(g.inputs()[0]->name() == "input_ids");
    CHECK(g.inputs()[0]->type().to_string() == "i64[batch, seq]");
    REQUIRE(g.outputs().size() == 1);
    CHECK(g.outputs()[0]->name() == "logits");
    CHECK(g.outputs()[0]->type().to_string() == std::string("f32[batch, seq, ") + e.vocab + "]");
    auto& md = built.value().metadata;
    CHECK(md["architecture"] == e.arch);
    CHECK(md["vocab_size"] == e.vocab);
    CHECK(md["checkpoint_dtype"] == e.dtype);
    if (std::string(e.eos).empty()) {
      CHECK(md.count("eos_token_id") == 0);
      CHECK(md["source_format"] == "state-spaces");
      CHECK(md["config_vocab_size"] == "75");
    } else {
      CHECK(md["eos_token_id"] == e.eos);
      CHECK(md["source_format"] == "hf");
    }
  }
}

TEST_CASE("the mamba graph holds the primitive scan form, no fused ops", "[hf]") {
  auto built = models::build_from_checkpoint_dir(kHfData + "mamba_fp32");
  REQUIRE(built.is_ok());
  std::map<std::string, int> counts;
  for (const Node* n : built.value()->nodes()) counts[n->op()]++;
  CHECK(counts["LinearRecurrence"] == 2);
  CHECK(counts["Softplus"] == 2);
  CHECK(counts["CausalConvWithState"] == 2);
  CHECK(counts["SelectiveScan"] == 0);
  CHECK(counts["Attention"] == 0);
}

TEST_CASE("at -O1 the passes fuse the builders' primitive attention and scan forms", "[hf]") {
  struct Expect {
    const char* name;
    const char* fused;     // the op -O1 must produce, twice (one per layer)
    const char* replaced;  // a primitive op that must be gone
  };
  for (const Expect& e :
       {Expect{"gpt2_fp32", "Attention", "Softmax"}, Expect{"llama_fp16_sharded", "Attention", "Softmax"},
        Expect{"llama_bf16_untied", "Attention", "Softmax"},
        Expect{"mamba_fp32", "SelectiveScan", "LinearRecurrence"},
        Expect{"mamba_state_spaces", "SelectiveScan", "LinearRecurrence"}}) {
    INFO(e.name);
    auto s0 = session_for(kHfData + e.name, 0);
    auto s1 = session_for(kHfData + e.name, 1);
    std::map<std::string, int> before, after;
    for (const Node* n : s0->graph().nodes()) before[n->op()]++;
    for (const Node* n : s1->graph().nodes()) after[n->op()]++;
    CHECK(before[e.fused] == 0);
    CHECK(before[e.replaced] == 2);
    CHECK(after[e.fused] == 2);
    CHECK(after[e.replaced] == 0);
  }
}

TEST_CASE("f32 weights are zero-copy views of the mapped file", "[hf]") {
  auto ckpt = Checkpoint::open_dir(kHfData + "gpt2_fp32");
  REQUIRE(ckpt.is_ok());
  const models::SafetensorsTensor* t = ckpt.value().find("transformer.wte.weight");
  REQUIRE(t != nullptr);
  auto w = ckpt.value().f32("transformer.wte.weight", {96, 32});
  REQUIRE(w.is_ok());
  CHECK(w.value().raw() == t->data.raw());
  auto wrong = ckpt.value().f32("transformer.wte.weight", {32, 96});
  REQUIRE_FALSE(wrong.is_ok());
  CHECK_THAT(
      wrong.status().message(),
      Catch::Contains("model.safetensors: tensor 'transformer.wte.weight'") && Catch::Contains("[96, 32]"));
}

TEST_CASE("a saved model keeps the logits and the metadata", "[hf]") {
  TempDir tmp;
  auto built = models::build_model_from_checkpoint_dir(kHfData + "llama_bf16_untied");
  REQUIRE(built.is_ok());
  SaveOptions save;
  save.metadata = built.value().metadata;
  REQUIRE(save_model(*built.value().graph, tmp / "m.seqrun", save).is_ok());
  auto session = Session::load(tmp / "m.seqrun");
  INFO(session.status().message());
  REQUIRE(session.is_ok());
  CHECK(session.value()->metadata().at("architecture") == "llama");
  CHECK(session.value()->metadata().at("bos_token_id") == "0");
  auto ids = runtime::read_npy(kHfData + "llama_bf16_untied/input_ids.npy");
  auto want = runtime::read_npy(kHfData + "llama_bf16_untied/logits.npy");
  REQUIRE(ids.is_ok());
  REQUIRE(want.is_ok());
  CHECK(max_scaled_error(run_session(*session.value(), ids.value()), want.value()) <= kTolerance);
}

// ---- safetensors parsing -------------------------------------------------------------------------------

TEST_CASE("safetensors: f32, f16, bf16 read and convert; misaligned data is copied", "[safetensors]") {
  // F16 1.5 = 0x3E00, -2 = 0xC000; BF16 1.5 = 0x3FC0, -0.25 = 0xBE80. A U8 first makes the F32 misaligned.
  std::vector<uint8_t> data = {7};
  for (uint16_t h : {0x3E00, 0xC000, 0x3FC0, 0xBE80}) {
    data.push_back(static_cast<uint8_t>(h & 0xff));
    data.push_back(static_cast<uint8_t>(h >> 8));
  }
  auto f = f32_bytes({0.5f, -3.0f});
  data.insert(data.end(), f.begin(), f.end());
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[1,5]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[5,9]},)"
      R"("f":{"dtype":"F32","shape":[2,1],"data_offsets":[9,17]}})";
  auto keep = std::make_shared<std::vector<uint8_t>>(safetensors_bytes(header, data));
  auto file = models::parse_safetensors(keep->data(), keep->size(), "ok.safetensors", keep);
  INFO(file.status().message());
  REQUIRE(file.is_ok());
  CHECK(file.value().metadata.at("format") == "pt");
  REQUIRE(file.value().tensors.size() == 4);
  auto ckpt = Checkpoint::from_files({file.value()});
  REQUIRE(ckpt.is_ok());
  auto h = ckpt.value().f32("h", {2});
  auto b = ckpt.value().f32("b", {2});
  auto fl = ckpt.value().f32("f", {2, 1});
  REQUIRE(h.is_ok());
  REQUIRE(b.is_ok());
  REQUIRE(fl.is_ok());
  CHECK(h.value().to_f32_vector() == std::vector<float>{1.5f, -2.0f});
  CHECK(b.value().to_f32_vector() == std::vector<float>{1.5f, -0.25f});
  CHECK(fl.value().to_f32_vector() == std::vector<float>{0.5f, -3.0f});
  CHECK(reinterpret_cast<uintptr_t>(fl.value().raw()) % 4 == 0);
  auto u = ckpt.value().f32("u", {1});
  REQUIRE_FALSE(u.is_ok());
  CHECK_THAT(u.status().message(), Catch::Contains("tensor 'u'") && Catch::Contains("u8"));
  CHECK_FALSE(ckpt.value().f32("absent", {1}).is_ok());
}

TEST_CASE("safetensors: hostile files are errors naming the file and tensor", "[safetensors]") {
  const std::vector<uint8_t> data16 = f32_bytes({1, 2, 3, 4});
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int begin,
                  int end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
  };
  SECTION("shorter than the length field") {
    CHECK_THAT(parse_error({1, 2, 3}), Catch::Contains("hostile.safetensors") && Catch::Contains("shorter"));
  }
  SECTION("header length past the end") {
    auto bytes = safetensors_bytes("{}", {}, 1000);
    CHECK_THAT(parse_error(bytes), Catch::Contains("hostile.safetensors: header length 1000 exceeds"));
    auto huge = safetensors_bytes("{}", {}, UINT64_MAX - 1);
    CHECK_THAT(parse_error(huge), Catch::Contains("header length"));
  }
  SECTION("bad JSON") {
    CHECK_THAT(parse_error(safetensors_bytes("{\"a\": ", {})),
               Catch::Contains("hostile.safetensors: header: invalid JSON"));
    CHECK_THAT(parse_error(safetensors_bytes("[1, 2]", {})), Catch::Contains("JSON object"));
    CHECK_THAT(parse_error(safetensors_bytes("{} trailing", {})), Catch::Contains("invalid JSON"));
  }
  SECTION("offsets out of range") {
    auto bytes = safetensors_bytes("{" + entry("w", "F32", "[4]", 0, 32) + "}", data16);
    CHECK_THAT(parse_error(bytes),
               Catch::Contains("hostile.safetensors: tensor 'w'") && Catch::Contains("exceed"));
    auto reversed = safetensors_bytes("{" + entry("w", "F32", "[0]", 8, 4) + "}", data16);
    CHECK_THAT(parse_error(reversed), Catch::Contains("tensor 'w'"));
  }
  SECTION("overlapping tensors") {
    auto bytes = safetensors_bytes(
        "{" + entry("a", "F32", "[3]", 0, 12) + "," + entry("b", "F32", "[2]", 8, 16) + "}", data16);
    CHECK_THAT(parse_error(bytes),
               Catch::Contains("'a'") && Catch::Contains("'b'") && Catch::Contains("overlap"));
  }
  SECTION("byte count does not match dtype and shape") {
    auto bytes = safetensors_bytes("{" + entry("w", "F32", "[2,2]", 0, 12) + "}", data16);
    CHECK_THAT(parse_error(bytes), Catch::Contains("tensor 'w'") && Catch::Contains("needs 16 bytes"));
    auto f16 = safetensors_bytes("{" + entry("w", "F16", "[4]", 0, 16) + "}", data16);
    CHECK_THAT(parse_error(f16), Catch::Contains("tensor 'w'") && Catch::Contains("needs 8 bytes"));
  }
  SECTION("unknown dtype, bad shape, bad fields, duplicates") {
    CHECK_THAT(parse_error(safetensors_bytes("{" + entry("w", "F8_E4M3", "[16]", 0, 16) + "}", data16)),
               Catch::Contains("tensor 'w'") && Catch::Contains("F8_E4M3"));
    CHECK_THAT(parse_error(safetensors_bytes("{" + entry("w", "F32", "[-4]", 0, 16) + "}", data16)),
               Catch::Contains("tensor 'w'") && Catch::Contains("shape"));
    CHECK_THAT(parse_error(safetensors_bytes("{" + entry("w", "F32", "[4611686018427387904,8]", 0, 16) + "}",
                                             data16)),
               Catch::Contains("tensor 'w'"));
    CHECK_THAT(parse_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4]}})", data16)),
               Catch::Contains("tensor 'w'") && Catch::Contains("data_offsets"));
    CHECK_THAT(parse_error(safetensors_bytes(R"({"w":[1]})", data16)), Catch::Contains("tensor 'w'"));
    CHECK_THAT(
        parse_error(safetensors_bytes(
            "{" + entry("w", "F32", "[2]", 0, 8) + "," + entry("w", "F32", "[2]", 8, 16) + "}", data16)),
        Catch::Contains("'w' twice"));
    CHECK_THAT(parse_error(safetensors_bytes(R"({"__metadata__":{"a":1}})", data16)),
               Catch::Contains("__metadata__"));
  }
}

TEST_CASE("safetensors: a truncated checkpoint file names the file and the first cut tensor",
          "[safetensors]") {
  TempDir tmp;
  const std::string src = kHfData + "mamba_fp32/model.safetensors";
  std::vector<uint8_t> bytes = read_bytes(src);
  bytes.resize(bytes.size() / 2);
  write_bytes(tmp / "model.safetensors", bytes);
  auto r = models::read_safetensors(tmp / "model.safetensors");
  REQUIRE_FALSE(r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains(tmp / "model.safetensors") &&
                                       Catch::Contains("tensor '") && Catch::Contains("exceed"));
  write_bytes(tmp / "empty.safetensors", {});
  auto empty = models::read_safetensors(tmp / "empty.safetensors");
  REQUIRE_FALSE(empty.is_ok());
  CHECK_THAT(empty.status().message(), Catch::Contains("empty.safetensors") && Catch::Contains("shorter"));
  CHECK_FALSE(models::read_safetensors(tmp / "absent.safetensors").is_ok());
}

// ---- shard indexes -------------------------------------------------------------------------------------

TEST_CASE("shard index: paths must stay inside the folder; mapped tensors must exist", "[safetensors]") {
  TempDir outer;
  fs::create_directories(outer.path / "ckpt");
  const std::string dir = (outer.path / "ckpt").string();
  const std::string index = dir + "/model.safetensors.index.json";
  write_bytes(outer / "outside.safetensors",
              safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({1})));
  write_bytes(dir + "/a.safetensors",
              safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({2})));
  write_bytes(dir + "/b.safetensors",
              safetensors_bytes(R"({"v":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({3})));

  SECTION("a good index") {
    write_text(index, R"({"metadata":{},"weight_map":{"w":"a.safetensors","v":"b.safetensors"}})");
    auto c = Checkpoint::open_dir(dir);
    INFO(c.status().message());
    REQUIRE(c.is_ok());
    CHECK(c.value().names() == std::vector<std::string>{"v", "w"});
    CHECK(c.value().f32("v", {1}).value().to_f32_vector() == std::vector<float>{3});
  }
  SECTION("parent-relative shard") {
    write_text(index, R"({"weight_map":{"w":"../outside.safetensors"}})");
    auto c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("model.safetensors.index.json: tensor 'w'") &&
                                         Catch::Contains("leaves the index's folder"));
  }
  SECTION("absolute shard") {
    write_text(index, "{\"weight_map\":{\"w\":\"" + outer / "outside.safetensors" + "\"}}");
    auto c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(),
               Catch::Contains("tensor 'w'") && Catch::Contains("not a file name relative"));
  }
  SECTION("symlink escaping the folder") {
    fs::create_symlink(outer.path / "outside.safetensors", outer.path / "ckpt" / "link.safetensors");
    write_text(index, R"({"weight_map":{"w":"link.safetensors"}})");
    auto c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(),
               Catch::Contains("tensor 'w'") && Catch::Contains("leaves the index's folder"));
  }
  SECTION("tensor not in its shard, missing shard, duplicate across shards, bad index") {
    write_text(index, R"({"weight_map":{"w":"b.safetensors"}})");
    auto c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("tensor 'w'") && Catch::Contains("does not hold it"));

    write_text(index, R"({"weight_map":{"w":"missing.safetensors"}})");
    c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("missing.safetensors"));

    write_bytes(
        dir + "/c.safetensors",
        safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32_bytes({4})));
    write_text(index, R"({"weight_map":{"w":"a.safetensors","v":"c.safetensors"}})");
    c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("tensor 'w' is also in"));

    write_text(index, R"({"weight_map":{"w":"a.safetensors")");
    c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("model.safetensors.index.json: invalid JSON"));

    write_text(index, R"({"weight_map":{"w":3}})");
    c = Checkpoint::open_dir(dir);
    REQUIRE_FALSE(c.is_ok());
    CHECK_THAT(c.status().message(), Catch::Contains("tensor 'w'"));
  }
}

// ---- builder errors ------------------------------------------------------------------------------------

TEST_CASE("builders: config and checkpoint mismatches are errors naming the key or tensor", "[hf]") {
  TempDir tmp;
  copy_dir(kHfData + "gpt2_fp32", tmp.path);
  const std::vector<uint8_t> config_bytes = read_bytes(tmp / "config.json");
  const std::string config(config_bytes.begin(), config_bytes.end());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string text = config;
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    write_text(tmp / "config.json", text);
  };
  auto error = [&]() {
    auto r = models::build_from_checkpoint_dir(tmp.path.string());
    REQUIRE_FALSE(r.is_ok());
    return r.status().message();
  };
  SECTION("wrong width: the first tensor whose shape disagrees") {
    replace("\"n_embd\": 32", "\"n_embd\": 64");
    CHECK_THAT(error(),
               Catch::Contains("tensor 'transformer.wte.weight'") && Catch::Contains("expected [96, 64]"));
  }
  SECTION("fewer layers than the checkpoint holds: an unexpected tensor") {
    replace("\"n_layer\": 2", "\"n_layer\": 1");
    CHECK_THAT(error(), Catch::Contains("tensor 'transformer.h.1.") && Catch::Contains("unexpected"));
  }
  SECTION("more layers than the checkpoint holds: a missing tensor") {
    replace("\"n_layer\": 2", "\"n_layer\": 3");
    CHECK_THAT(error(),
               Catch::Contains("tensor 'transformer.h.2.ln_1.weight'") && Catch::Contains("missing"));
  }
  SECTION("bad value types and unsupported choices") {
    replace("\"n_head\": 4", "\"n_head\": \"4\"");
    CHECK_THAT(error(), Catch::Contains("config.json: 'n_head' must be an integer"));
    replace("\"activation_function\": \"gelu_new\"", "\"activation_function\": \"mish\"");
    CHECK_THAT(error(), Catch::Contains("'activation_function'") && Catch::Contains("mish"));
    replace("\"model_type\": \"gpt2\"", "\"model_type\": \"bert\"");
    CHECK_THAT(error(), Catch::Contains("model_type 'bert' is not supported"));
    write_text(tmp / "config.json", "{\"model_type\": ");
    CHECK_THAT(error(), Catch::Contains("config.json: invalid JSON"));
  }
  SECTION("no weights at all") {
    fs::remove(tmp / "model.safetensors");
    CHECK_THAT(error(),
               Catch::Contains("no model.safetensors.index.json, model.safetensors or *.safetensors"));
  }
}

TEST_CASE("hf config: typed getters name the file and key", "[hf]") {
  auto c = models::HfConfig::parse(
      R"({"a": 3, "b": 2.0, "c": "x", "d": null, "e": [1, 2], "f": {"g": true}})", "cfg.json");
  REQUIRE(c.is_ok());
  CHECK(c.value().get_int("a").value() == 3);
  CHECK(c.value().get_int("b").value() == 2);
  CHECK(c.value().get_int("d", 7).value() == 7);
  CHECK_FALSE(c.value().has("d"));
  CHECK(c.value().get_int_list("e").value() == std::vector<int64_t>{1, 2});
  CHECK(c.value().get_int_list("a").value() == std::vector<int64_t>{3});
  CHECK(c.value().get_object("f").value().get_bool("g", false).value());
  CHECK_THAT(c.value().get_int("c").status().message(), Catch::Contains("cfg.json: 'c' must be an integer"));
  CHECK_THAT(c.value().get_object("f").value().get_int("g").status().message(), Catch::Contains("'f.g'"));
  CHECK_THAT(c.value().get_int("zz").status().message(), Catch::Contains("'zz' is missing"));
}
