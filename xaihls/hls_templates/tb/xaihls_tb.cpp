// Testbench of an xaihls engine project (not synthesized).
//
// Loads the Program's DDR image, then for every case in tb_data/cases.txt writes the image,
// baseline and integrated-gradients table where a host driver would, runs xaihls_top, and
// compares logits, result (predicted class, target) and attribution bit for bit with the
// golden model's results. Prints the first differing element of each failing case, e.g.
//   MISMATCH image 0 method saliency attribution[37]: got 12 expected 13
// and returns non-zero on any mismatch.
//
// Usage: xaihls_tb [PROJECT_DIR]. Without it the project folder is searched from the current
// folder upwards (Vitis HLS runs C-simulation in <project>/xaihls_prj/solution1/csim/build).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "../firmware/parameters.h"
#include "../firmware/xaihls_top.h"

namespace {

// Header word indices (docs/program.md).
const int H_IMAGE_ADDR = 6, H_BASELINE_ADDR = 8, H_IG_TABLE_ADDR = 9, H_LOGITS_ADDR = 10, H_RESULT_ADDR = 11,
          H_ATTR_ADDR = 12, H_CLASSES = 15, H_INPUT_ELEMS = 16;

bool read_file(const std::string &path, std::vector<char> &out) {
    std::ifstream f(path.c_str(), std::ios::binary);
    if (!f) return false;
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return true;
}

bool exists(const std::string &path) {
    std::ifstream f(path.c_str(), std::ios::binary);
    return static_cast<bool>(f);
}

std::string find_root(int argc, char **argv) {
    if (argc > 1) return argv[1];
    const char *candidates[] = {".", "..", "../..", "../../..", "../../../..", "../../../../.."};
    for (const char *c : candidates) {
        if (exists(std::string(c) + "/tb_data/cases.txt")) return c;
    }
    return ".";
}

int header_word(const std::vector<short> &mem, int index) {
    const unsigned lo = static_cast<unsigned short>(mem[2 * index]);
    const unsigned hi = static_cast<unsigned short>(mem[2 * index + 1]);
    return static_cast<int>(lo | (hi << 16));
}

// Copies a little-endian binary file into DDR at a byte address; false if it does not fit.
bool place(std::vector<short> &mem, int byte_addr, const std::vector<char> &data) {
    if (byte_addr < 0 || byte_addr + data.size() > 2 * mem.size()) return false;
    std::memcpy(reinterpret_cast<char *>(mem.data()) + byte_addr, data.data(), data.size());
    return true;
}

struct Case {
    int image, code, target, steps;
    std::string image_file, method, ig_table, baseline, logits, result, attribution;
};

// Compares `count` elements of `bytes` each (2: int16, 4: int32) at a DDR byte address with
// the expected file; prints the first difference. Returns true when equal.
bool compare(const Case &c, const char *tensor, const std::vector<short> &mem, int byte_addr, int count, int bytes,
             const std::vector<char> &expected) {
    if (static_cast<int>(expected.size()) != count * bytes) {
        std::printf("MISMATCH image %d method %s %s: expected file has %d bytes, the Program has %d\n", c.image,
                    c.method.c_str(), tensor, static_cast<int>(expected.size()), count * bytes);
        return false;
    }
    const char *got = reinterpret_cast<const char *>(mem.data()) + byte_addr;
    for (int i = 0; i < count; i++) {
        long long g = 0, e = 0;
        if (bytes == 2) {
            short gs, es;
            std::memcpy(&gs, got + 2 * i, 2);
            std::memcpy(&es, expected.data() + 2 * i, 2);
            g = gs;
            e = es;
        } else {
            int gi, ei;
            std::memcpy(&gi, got + 4 * i, 4);
            std::memcpy(&ei, expected.data() + 4 * i, 4);
            g = gi;
            e = ei;
        }
        if (g != e) {
            std::printf("MISMATCH image %d method %s %s[%d]: got %lld expected %lld\n", c.image, c.method.c_str(),
                        tensor, i, g, e);
            return false;
        }
    }
    return true;
}

}  // namespace

int main(int argc, char **argv) {
    const std::string root = find_root(argc, argv);
    const std::string data_dir = root + "/tb_data/";
    std::vector<char> program;
    if (!read_file(root + "/firmware/weights/ddr_image.bin", program) &&
        !read_file(root + "/weights/ddr_image.bin", program)) {
        std::printf("ERROR: no firmware/weights/ddr_image.bin under '%s'\n", root.c_str());
        return 2;
    }
    if (static_cast<long long>(program.size()) > xaihls::TOTAL_BYTES) {
        std::printf("ERROR: ddr_image.bin has %d bytes, more than the Program's %d\n",
                    static_cast<int>(program.size()), xaihls::TOTAL_BYTES);
        return 2;
    }
    std::ifstream list((data_dir + "cases.txt").c_str());
    if (!list) {
        std::printf("ERROR: no tb_data/cases.txt under '%s'\n", root.c_str());
        return 2;
    }
    int cases = 0, failures = 0;
    std::string line;
    while (std::getline(list, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        Case c;
        if (!(fields >> c.image >> c.image_file >> c.method >> c.code >> c.target >> c.steps >> c.ig_table >>
              c.baseline >> c.logits >> c.result >> c.attribution)) {
            std::printf("ERROR: bad line in tb_data/cases.txt: %s\n", line.c_str());
            return 2;
        }
        std::vector<short> mem(xaihls::TOTAL_BYTES / 2, 0);
        std::vector<char> image, baseline, table, logits, result, attribution;
        place(mem, 0, program);
        const int n = header_word(mem, H_INPUT_ELEMS), classes = header_word(mem, H_CLASSES);
        bool ok = read_file(data_dir + c.image_file, image) && read_file(data_dir + c.ig_table, table) &&
                  read_file(data_dir + c.logits, logits) && read_file(data_dir + c.result, result);
        if (c.baseline != "-") ok = ok && read_file(data_dir + c.baseline, baseline);
        if (c.attribution != "-") ok = ok && read_file(data_dir + c.attribution, attribution);
        if (!ok) {
            std::printf("ERROR: a file of case '%s' is missing in tb_data/\n", line.c_str());
            return 2;
        }
        if (baseline.empty()) baseline.assign(2 * n, 0);
        ok = place(mem, header_word(mem, H_IMAGE_ADDR), image) &&
             place(mem, header_word(mem, H_BASELINE_ADDR), baseline) &&
             place(mem, header_word(mem, H_IG_TABLE_ADDR), table);
        if (!ok) {
            std::printf("ERROR: the inputs of case '%s' do not fit the Program's DDR\n", line.c_str());
            return 2;
        }

        const int status = xaihls_top(mem.data(), c.code, c.target, c.steps);

        cases++;
        bool same = true;
        if (status != 0) {
            std::printf("MISMATCH image %d method %s status: got %d expected 0\n", c.image, c.method.c_str(), status);
            same = false;
        }
        same = same && compare(c, "logits", mem, header_word(mem, H_LOGITS_ADDR), classes, 2, logits);
        same = same && compare(c, "result", mem, header_word(mem, H_RESULT_ADDR), 2, 4, result);
        if (c.attribution != "-")
            same = same && compare(c, "attribution", mem, header_word(mem, H_ATTR_ADDR), n, 2, attribution);
        if (same) {
            std::printf("ok image %d method %s\n", c.image, c.method.c_str());
        } else {
            failures++;
        }
    }
    std::printf("xaihls csim: %d cases, %d mismatches\n", cases, failures);
    if (cases == 0) return 2;
    return failures ? 1 : 0;
}
