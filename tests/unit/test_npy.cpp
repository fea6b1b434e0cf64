// .npy reading and writing against files numpy wrote (tests/reference/gen_npy_cases.py) and round trips.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime/npy.h"

using namespace seqrun;
using seqrun::runtime::read_npy;
using seqrun::runtime::write_npy;

namespace {

std::string npy_case(const std::string& name) {
  return std::string(SEQRUN_TEST_DATA) + "/npy/" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fresh scratch directory per test run, removed when the test executable exits.
struct ScratchDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("seqrun_test_npy_" + std::to_string(::getpid()));
  ScratchDir() { std::filesystem::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string scratch_dir() {
  static const ScratchDir dir;
  return dir.path.string();
}

Tensor read_ok(const std::string& name) {
  Result<Tensor> t = read_npy(npy_case(name));
  INFO(name << ": " << t.status().message());
  REQUIRE(t.is_ok());
  return t.value();
}

// The error message for `name`; the test fails when reading succeeds.
std::string read_error(const std::string& name) {
  Result<Tensor> t = read_npy(npy_case(name));
  REQUIRE_FALSE(t.is_ok());
  CHECK(t.status().message().find(name) != std::string::npos);  // names the file
  return t.status().message();
}

}  // namespace

TEST_CASE("npy: reads every supported dtype numpy writes") {
  SECTION("f32 (2, 3)") {
    Tensor t = read_ok("f32_2x3.npy");
    CHECK(t.dtype() == DType::f32);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.to_f32_vector() == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
  }
  SECTION("f64 scalar") {
    Tensor t = read_ok("f64_scalar.npy");
    CHECK(t.dtype() == DType::f64);
    CHECK(t.shape().empty());
    CHECK(t.data<double>()[0] == 3.25);
  }
  SECTION("f16") {
    Tensor t = read_ok("f16_4.npy");
    CHECK(t.dtype() == DType::f16);
    CHECK(t.shape() == Shape{4});
    CHECK(t.to_f32_vector() == std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)});
  }
  SECTION("i64 beyond 2^53") {
    Tensor t = read_ok("i64_3.npy");
    CHECK(t.dtype() == DType::i64);
    CHECK(t.to_i64_vector() == std::vector<int64_t>{-(int64_t{1} << 40), 0, int64_t{1} << 62});
  }
  SECTION("i32 (2, 2)") {
    Tensor t = read_ok("i32_2x2.npy");
    CHECK(t.dtype() == DType::i32);
    CHECK(t.shape() == Shape{2, 2});
    CHECK(t.to_i64_vector() == std::vector<int64_t>{1, -2, 3, -4});
  }
  SECTION("i8, u8, bool") {
    Tensor i8 = read_ok("i8_4.npy");
    CHECK(i8.dtype() == DType::i8);
    CHECK(i8.to_i64_vector() == std::vector<int64_t>{-128, -1, 0, 127});
    Tensor u8 = read_ok("u8_4.npy");
    CHECK(u8.dtype() == DType::u8);
    CHECK(u8.to_i64_vector() == std::vector<int64_t>{0, 1, 200, 255});
    Tensor b = read_ok("bool_5.npy");
    CHECK(b.dtype() == DType::boolean);
    CHECK(b.to_i64_vector() == std::vector<int64_t>{1, 0, 1, 1, 0});
  }
  SECTION("empty (0, 3)") {
    Tensor t = read_ok("f32_0x3.npy");
    CHECK(t.dtype() == DType::f32);
    CHECK(t.shape() == Shape{0, 3});
  }
  SECTION("format versions 2.0 and 3.0") {
    for (const char* name : {"f32_v2.npy", "f32_v3.npy"}) {
      Tensor t = read_ok(name);
      CHECK(t.shape() == Shape{2, 3});
      CHECK(t.to_f32_vector() == std::vector<float>{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
    }
  }
}

TEST_CASE("npy: rejects what it cannot represent, naming the file and the reason") {
  CHECK(read_error("f32_big_endian.npy").find("big-endian") != std::string::npos);
  CHECK(read_error("f32_fortran.npy").find("Fortran") != std::string::npos);
  CHECK(read_error("object.npy").find("object") != std::string::npos);
  CHECK(read_error("c64_complex.npy").find("unsupported dtype '<c8'") != std::string::npos);
  CHECK(read_error("structured.npy").find("structured") != std::string::npos);
  CHECK(read_error("f32_truncated_data.npy").find("truncated") != std::string::npos);
  CHECK(read_error("f32_trailing_bytes.npy").find("trailing") != std::string::npos);
  CHECK(read_error("truncated_header.npy").find("truncated header") != std::string::npos);
  CHECK(read_error("bad_magic.npy").find("not a .npy file") != std::string::npos);
  Result<Tensor> missing = read_npy(npy_case("does_not_exist.npy"));
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().message().find("does_not_exist.npy") != std::string::npos);
}

TEST_CASE("npy: rejects hand-made malformed headers") {
  auto write_raw = [](const std::string& name, const std::string& header, size_t data_bytes) {
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    bytes += header + std::string(data_bytes, '\0');
    std::string path = scratch_dir() + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  };
  struct Case {
    const char* header;
    const char* expected;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'shape': (2,), }\n", "lacks the 'fortran_order' key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }\n", "unsupported value"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': True, }\n",
       "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 }\n", "expected ',' or ')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n",
       "too many elements"},
      {"{'descr': '<f4' 'fortran_order': False}\n", "expected ',' or '}'"},
      {"{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }\n", "big-endian"},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::string path = write_raw("bad_" + std::to_string(i++) + ".npy", c.header, 8);
    Result<Tensor> t = read_npy(path);
    INFO(c.header);
    REQUIRE_FALSE(t.is_ok());
    CHECK(t.status().message().find(path) != std::string::npos);
    CHECK(t.status().message().find(c.expected) != std::string::npos);
  }
}

TEST_CASE("npy: the writer produces numpy's exact bytes") {
  // The same arrays gen_npy_cases.py saved with np.save, built here from the values in that script.
  SECTION("f32 (2, 3)") {
    Tensor t = Tensor::from_vector<float>({2, 3}, {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f});
    std::string path = scratch_dir() + "/f32_2x3.npy";
    REQUIRE(write_npy(path, t).is_ok());
    CHECK(read_bytes(path) == read_bytes(npy_case("f32_2x3.npy")));
  }
  SECTION("f64 scalar") {
    std::string path = scratch_dir() + "/f64_scalar.npy";
    REQUIRE(write_npy(path, Tensor::scalar<double>(3.25)).is_ok());
    CHECK(read_bytes(path) == read_bytes(npy_case("f64_scalar.npy")));
  }
  SECTION("i64 (3,)") {
    Tensor t = Tensor::from_vector<int64_t>({3}, {-(int64_t{1} << 40), 0, int64_t{1} << 62});
    std::string path = scratch_dir() + "/i64_3.npy";
    REQUIRE(write_npy(path, t).is_ok());
    CHECK(read_bytes(path) == read_bytes(npy_case("i64_3.npy")));
  }
  SECTION("bool (5,)") {
    Tensor t = Tensor::from_vector<bool>({5}, {true, false, true, true, false});
    std::string path = scratch_dir() + "/bool_5.npy";
    REQUIRE(write_npy(path, t).is_ok());
    CHECK(read_bytes(path) == read_bytes(npy_case("bool_5.npy")));
  }
  SECTION("empty (0, 3)") {
    std::string path = scratch_dir() + "/f32_0x3.npy";
    REQUIRE(write_npy(path, Tensor::empty(DType::f32, {0, 3})).is_ok());
    CHECK(read_bytes(path) == read_bytes(npy_case("f32_0x3.npy")));
  }
}

TEST_CASE("npy: write then read round-trips every dtype") {
  std::vector<Tensor> tensors = {
      Tensor::from_vector<float>({2, 2}, {1.5f, -2.0f, 3.0e-8f, 1.0e30f}),
      Tensor::from_vector<double>({3}, {0.1, -1e300, 5.0}),
      Tensor::from_vector<half_t>({2}, {half_t{0x3c00}, half_t{0xc100}}),
      Tensor::from_vector<int64_t>({1, 2}, {INT64_MIN, INT64_MAX}),
      Tensor::from_vector<int32_t>({2}, {INT32_MIN, 7}),
      Tensor::from_vector<int8_t>({2}, {-5, 6}),
      Tensor::from_vector<uint8_t>({2, 1, 1}, {9, 250}),
      Tensor::from_vector<bool>({3}, {false, true, true}),
      Tensor::scalar<float>(42.0f),
  };
  int i = 0;
  for (const Tensor& t : tensors) {
    std::string path = scratch_dir() + "/roundtrip_" + std::to_string(i++) + ".npy";
    INFO(path);
    REQUIRE(write_npy(path, t).is_ok());
    Result<Tensor> back = read_npy(path);
    REQUIRE(back.is_ok());
    CHECK(back->same_bytes(t));
  }
}

TEST_CASE("npy: a dtype without a numpy equivalent is an error naming the file") {
  Tensor t = Tensor::empty(DType::bf16, {2});
  std::string path = scratch_dir() + "/bf16.npy";
  Status st = write_npy(path, t);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find(path) != std::string::npos);
  CHECK(st.message().find("bf16") != std::string::npos);
}
