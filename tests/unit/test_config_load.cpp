// Loading run configs: values of every type, each error class with its exact
// message (file, line, field, value, allowed values), --set overrides and presets.
#include <gtest/gtest.h>

#include "lumina/config/run_config.h"
#include "support/test_files.h"

namespace lumina {
namespace {

using test::error_of;

class ConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::fresh_test_dir(); }
  // Writes `text` to <test dir>/<name> and returns the path.
  std::string file(const std::string& name, std::string_view text) {
    const std::string path = dir_ + "/" + name;
    test::write_bytes(path, text);
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigLoad, ReadsEveryFieldType) {
  const std::string path = file("all.toml", R"(
[model]
hidden_size = 256          # integer
rope_theta = 500000        # a TOML integer for a float field
rms_norm_eps = 1e-6
tie_word_embeddings = false
moe_pattern = "sandwich"
[train]
experiment_name = "exp 1"
[data]
train_files = ["a.txt", "b.jsonl"]
)");
  const RunConfig c = read_run_config(path);
  EXPECT_EQ(c.model.hidden_size, 256);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.model.tie_word_embeddings);
  EXPECT_EQ(c.model.moe_pattern, "sandwich");
  EXPECT_EQ(c.train.experiment_name, "exp 1");
  EXPECT_EQ(c.data.train_files, (std::vector<std::string>{"a.txt", "b.jsonl"}));
  // Untouched fields keep their defaults.
  EXPECT_EQ(c.model.num_layers, ModelConfig{}.num_layers);
  EXPECT_EQ(c.optim, OptimConfig{});
}

TEST_F(ConfigLoad, UnknownFieldSuggestsClosestName) {
  const std::string path = file("x.toml", "[model]\nhidden_size = 256\nhiden_size = 3\n");
  EXPECT_EQ(error_of([&] { read_run_config(path); }),
            path + ":3: unknown field model.hiden_size (did you mean model.hidden_size?)");
}

TEST_F(ConfigLoad, UnknownFieldInWrongSectionSuggestsItsSection) {
  const std::string path = file("x.toml", "[model]\nlearning_rate = 1e-3\n");
  EXPECT_EQ(error_of([&] { read_run_config(path); }),
            path + ":2: unknown field model.learning_rate (did you mean optim.learning_rate?)");
}

TEST_F(ConfigLoad, UnknownFieldFarFromAnyNameHasNoSuggestion) {
  const std::string path = file("x.toml", "[model]\nqqqqzzzz = 1\n");
  EXPECT_EQ(error_of([&] { read_run_config(path); }), path + ":2: unknown field model.qqqqzzzz");
}

TEST_F(ConfigLoad, UnknownSectionAndTopLevelKey) {
  const std::string section = file("s.toml", "\n[modle]\nhidden_size = 3\n");
  EXPECT_EQ(error_of([&] { read_run_config(section); }),
            section + ":2: unknown section [modle] (did you mean [model]?)");
  const std::string top = file("t.toml", "hidden_size = 3\n");
  EXPECT_EQ(error_of([&] { read_run_config(top); }),
            top + ":1: unknown top-level key hidden_size: fields belong in a section (did you mean "
                  "model.hidden_size?)");
  const std::string not_table = file("n.toml", "model = 3\n");
  EXPECT_EQ(error_of([&] { read_run_config(not_table); }),
            not_table + ":1: model must be a table: write [model] and its fields on the lines below");
}

TEST_F(ConfigLoad, WrongTypeNamesValueAndExpectedType) {
  const std::string a = file("a.toml", "[model]\nhidden_size = \"big\"\n");
  EXPECT_EQ(error_of([&] { read_run_config(a); }),
            a + ":2: model.hidden_size = \"big\": wrong type, expected an integer");
  const std::string b = file("b.toml", "[model]\nuse_moe = 1\n");
  EXPECT_EQ(error_of([&] { read_run_config(b); }),
            b + ":2: model.use_moe = 1: wrong type, expected a bool (true or false)");
  const std::string c = file("c.toml", "[model]\nhidden_size = 2.5\n");
  EXPECT_EQ(error_of([&] { read_run_config(c); }),
            c + ":2: model.hidden_size = 2.5: wrong type, expected an integer");
  const std::string d = file("d.toml", "[data]\ntrain_files = \"a.txt\"\n");
  EXPECT_EQ(error_of([&] { read_run_config(d); }),
            d + ":2: data.train_files = \"a.txt\": wrong type, expected a list of strings, e.g. [\"a.txt\", "
                "\"b.txt\"]");
  const std::string e = file("e.toml", "[train]\nprecision = 16\n");
  EXPECT_EQ(error_of([&] { read_run_config(e); }),
            e + ":2: train.precision = 16: wrong type, expected a string, one of auto, fp32, fp16, bf16, "
                "mixed_fp16, mixed_bf16, fp8_e4m3");
}

TEST_F(ConfigLoad, OutOfRangeNamesTheRange) {
  const std::string a = file("a.toml", "[model]\n\nhidden_size = 0\n");
  EXPECT_EQ(error_of([&] { read_run_config(a); }),
            a + ":3: model.hidden_size = 0: out of range, must be in [2, 65536]");
  const std::string b = file("b.toml", "[model]\nrope_theta = 0.0\n");
  EXPECT_EQ(error_of([&] { read_run_config(b); }), b + ":2: model.rope_theta = 0.0: out of range, must be > 0");
  const std::string c = file("c.toml", "[optim]\nbeta2 = 1.0\n");
  EXPECT_EQ(error_of([&] { read_run_config(c); }), c + ":2: optim.beta2 = 1.0: out of range, must be in [0, 1)");
  const std::string d = file("d.toml", "[model]\nrms_norm_eps = nan\n");
  EXPECT_EQ(error_of([&] { read_run_config(d); }),
            d + ":2: model.rms_norm_eps = nan: out of range, must be in (0, 1)");
}

TEST_F(ConfigLoad, BadChoiceListsValuesAndSuggests) {
  const std::string path = file("x.toml", "[train]\nprecision = \"bf61\"\n");
  EXPECT_EQ(error_of([&] { read_run_config(path); }),
            path + ":2: train.precision = \"bf61\": not one of auto, fp32, fp16, bf16, mixed_fp16, mixed_bf16, "
                   "fp8_e4m3 (did you mean \"bf16\"?)");
}

TEST_F(ConfigLoad, SyntaxErrorNamesLine) {
  const std::string path = file("x.toml", "[model]\nhidden_size = 256\nnum_layers = = 3\n");
  const std::string error = error_of([&] { read_run_config(path); });
  EXPECT_EQ(error.rfind(path + ":3: ", 0), 0u) << error;
}

TEST_F(ConfigLoad, MissingFileNamesPathAndReason) {
  const std::string path = dir_ + "/absent.toml";
  EXPECT_EQ(error_of([&] { read_run_config(path); }), "cannot open " + path + ": No such file or directory");
}

TEST_F(ConfigLoad, FirstErrorInFileOrderIsReported) {
  // toml++ keeps keys sorted; the loader reports by line, so zzz (line 2) comes before aaa (line 3).
  const std::string path = file("x.toml", "[model]\nzzz_unknown = 1\naaa_unknown = 2\n");
  EXPECT_EQ(error_of([&] { read_run_config(path); }), path + ":2: unknown field model.zzz_unknown");
}

TEST_F(ConfigLoad, OverridesUseTheFieldType) {
  const std::string path = file("x.toml", "[model]\nhidden_size = 256\n");
  LoadOptions o;
  o.overrides = {"model.hidden_size=512",        "model.rope_theta=1e6",
                 "model.use_moe=true",           "train.precision=fp32",
                 "train.experiment_name=my run", "data.train_files=a.txt, b.txt",
                 "data.validation_files=[\"c d.txt\"]", "data.tokenizer_path=\"quoted\\tpath\""};
  const RunConfig c = read_run_config(path, o);
  EXPECT_EQ(c.model.hidden_size, 512);  // the override wins over the file
  EXPECT_EQ(c.model.rope_theta, 1e6);
  EXPECT_TRUE(c.model.use_moe);
  EXPECT_EQ(c.train.precision, "fp32");
  EXPECT_EQ(c.train.experiment_name, "my run");
  EXPECT_EQ(c.data.train_files, (std::vector<std::string>{"a.txt", "b.txt"}));
  EXPECT_EQ(c.data.validation_files, (std::vector<std::string>{"c d.txt"}));
  EXPECT_EQ(c.data.tokenizer_path, "quoted\tpath");
}

TEST_F(ConfigLoad, OverrideErrors) {
  const auto with = [](std::string override_text) {
    LoadOptions o;
    o.overrides = {std::move(override_text)};
    return error_of([&] { read_run_config("", o); });
  };
  EXPECT_EQ(with("model.hidden_size=abc"),
            "--set model.hidden_size=abc: model.hidden_size = \"abc\": wrong type, expected an integer");
  EXPECT_EQ(with("model.hidden_size=1"),
            "--set model.hidden_size=1: model.hidden_size = 1: out of range, must be in [2, 65536]");
  EXPECT_EQ(with("model.hiden_size=4"),
            "--set model.hiden_size=4: unknown field model.hiden_size (did you mean model.hidden_size?)");
  EXPECT_EQ(with("hidden_size=4"),
            "--set hidden_size=4: name the field as section.field (did you mean model.hidden_size?)");
  EXPECT_EQ(with("model.use_moe"), "--set model.use_moe: expected section.field=value");
  EXPECT_EQ(with("model.use_moe=yes"),
            "--set model.use_moe=yes: model.use_moe = \"yes\": wrong type, expected a bool (true or false)");
  EXPECT_EQ(with("model.hidden_size=1\nnum_layers = 3"),
            "--set model.hidden_size=1\nnum_layers = 3: model.hidden_size = \"1\\nnum_layers = 3\": wrong type, "
            "expected an integer");
}

TEST_F(ConfigLoad, PresetIsTheBaseAndTheFileGoesOnTop) {
  const std::string path = file("x.toml", "preset = \"debug\"\n[model]\nhidden_size = 256\n");
  const RunConfig c = read_run_config(path);
  EXPECT_EQ(c.model.hidden_size, 256);        // from the file
  EXPECT_EQ(c.model.intermediate_size, 512);  // from configs/debug.toml
  EXPECT_TRUE(c.model.use_moe);
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.train.experiment_name, "debug");
}

TEST_F(ConfigLoad, PresetOptionAndPresetChain) {
  LoadOptions o;
  o.preset = "debug_dense";  // debug_dense names preset = "debug" itself
  o.overrides = {"train.batch_size=4"};
  const RunConfig c = read_run_config("", o);
  EXPECT_FALSE(c.model.use_moe);
  EXPECT_EQ(c.model.hidden_size, 128);
  EXPECT_EQ(c.train.experiment_name, "debug_dense");
  EXPECT_EQ(c.train.batch_size, 4);
  EXPECT_EQ(c.train.seq_len, 256);
}

TEST_F(ConfigLoad, PresetErrors) {
  const std::string both = file("both.toml", "preset = \"debug\"\n");
  LoadOptions o;
  o.preset = "b1";
  EXPECT_EQ(error_of([&] { read_run_config(both, o); }),
            both + ":1: preset = \"debug\" conflicts with --preset b1: keep one");

  const std::string presets = dir_ + "/presets";
  std::filesystem::create_directories(presets);
  test::write_bytes(presets + "/a.toml", "preset = \"b\"\n");
  test::write_bytes(presets + "/b.toml", "preset = \"a\"\n");
  LoadOptions cycle;
  cycle.preset = "a";
  cycle.configs_dir = presets;
  EXPECT_EQ(error_of([&] { read_run_config("", cycle); }),
            "preset cycle: " + presets + "/a.toml -> " + presets + "/b.toml -> " + presets + "/a.toml");

  const std::string missing = file("m.toml", "\npreset = \"nope\"\n");
  LoadOptions in_dir;
  in_dir.configs_dir = presets;
  EXPECT_EQ(error_of([&] { read_run_config(missing, in_dir); }),
            missing + ":2: preset \"nope\" not found: no file " + presets + "/nope.toml (presets there: a, b)");

  const std::string not_string = file("n.toml", "preset = 3\n");
  EXPECT_EQ(error_of([&] { read_run_config(not_string, in_dir); }),
            not_string + ":1: preset = 3: wrong type, expected a string naming a preset in " + presets +
                " (e.g. preset = \"debug\")");
}

TEST_F(ConfigLoad, ErrorsInAPresetNameThePresetFile) {
  const std::string presets = dir_ + "/presets";
  std::filesystem::create_directories(presets);
  test::write_bytes(presets + "/broken.toml", "[model]\nnum_heads = 0\n");
  const std::string path = file("x.toml", "preset = \"broken\"\n");
  LoadOptions o;
  o.configs_dir = presets;
  EXPECT_EQ(error_of([&] { read_run_config(path, o); }),
            presets + "/broken.toml:2: model.num_heads = 0: out of range, must be in [1, 1024]");
}

TEST_F(ConfigLoad, LoadRunsCrossFieldValidationWithFileContext) {
  const std::string path = file("x.toml", "[model]\nnum_heads = 3\n");
  EXPECT_NO_THROW(read_run_config(path));  // each field is fine on its own
  EXPECT_EQ(error_of([&] { load_run_config(path); }),
            path + ": model.hidden_size = 128 is not a multiple of model.num_heads = 3: use e.g. hidden_size = 126 "
                   "or 132, or change num_heads");
}

}  // namespace
}  // namespace lumina
