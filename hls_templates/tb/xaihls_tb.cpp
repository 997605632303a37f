// Testbench of an xaihls Engine v2 project (not synthesized).
//
// Loads the Program's DDR image, then for every case in tb_data/cases.txt writes the image
// and baseline (blocked layout, as a host driver does) and the integrated-gradients table,
// runs xaihls_top, and compares logits, result (predicted class, target) and attribution bit
// for bit with the golden model's results (stored in the DDR's blocked layout). Prints the
// first differing element of each failing case with where it lies, e.g.
//   MISMATCH image 0 method saliency attribution[37] (channel 1, row 2, column 3): got 12 expected 13
// and returns non-zero on any mismatch.
//
// Usage: xaihls_tb [PROJECT_DIR]. Without it the project folder is searched from the current
// folder upwards (Vitis HLS runs C-simulation in <project>/xaihls_prj/solution1/csim/build).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "../firmware/xaihls_host.h"

namespace {

namespace c = xaihls::contract;

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
    for (const char *cand : candidates) {
        if (exists(std::string(cand) + "/tb_data/cases.txt")) return cand;
    }
    return ".";
}

// Copies a little-endian binary file into DDR at a byte address; false if it does not fit.
bool place(std::vector<unsigned char> &mem, long byte_addr, const std::vector<char> &data) {
    if (byte_addr < 0 || byte_addr + static_cast<long>(data.size()) > static_cast<long>(mem.size())) return false;
    std::memcpy(mem.data() + byte_addr, data.data(), data.size());
    return true;
}

struct Case {
    int image, code, target, steps;
    std::string image_file, method, ig_table, baseline, logits, result, attribution;
};

struct Layout {  // the input tensor's blocked layout [blocks][h][w][tn], to name an element
    int c, h, w, tn;
};

// Compares `count` elements of `bytes` each (2: int16, 4: int32) at a DDR byte address with
// the expected file; prints the first difference. Returns true when equal.
bool compare(const Case &cs, const char *tensor, const std::vector<unsigned char> &mem, long byte_addr, int count,
             int bytes, const std::vector<char> &expected, const Layout *layout) {
    if (static_cast<int>(expected.size()) != count * bytes) {
        std::printf("MISMATCH image %d method %s %s: expected file has %d bytes, the Program has %d\n", cs.image,
                    cs.method.c_str(), tensor, static_cast<int>(expected.size()), count * bytes);
        return false;
    }
    for (int i = 0; i < count; i++) {
        long long g = 0, e = 0;
        if (bytes == 2) {
            int16_t gs, es;
            std::memcpy(&gs, mem.data() + byte_addr + 2 * i, 2);
            std::memcpy(&es, expected.data() + 2 * i, 2);
            g = gs;
            e = es;
        } else {
            int32_t gi, ei;
            std::memcpy(&gi, mem.data() + byte_addr + 4 * i, 4);
            std::memcpy(&ei, expected.data() + 4 * i, 4);
            g = gi;
            e = ei;
        }
        if (g != e) {
            std::string where;
            if (layout) {  // blocked index i -> channel, row, column
                const int lane = i % layout->tn, pixel = i / layout->tn;
                const int block = pixel / (layout->h * layout->w), yx = pixel % (layout->h * layout->w);
                std::ostringstream s;
                s << " (channel " << block * layout->tn + lane << ", row " << yx / layout->w << ", column "
                  << yx % layout->w << ")";
                where = s.str();
            }
            std::printf("MISMATCH image %d method %s %s[%d]%s: got %lld expected %lld\n", cs.image, cs.method.c_str(),
                        tensor, i, where.c_str(), g, e);
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
    if (!read_file(root + "/firmware/weights/ddr_image.bin", program)) {
        std::printf("ERROR: no firmware/weights/ddr_image.bin under '%s'\n", root.c_str());
        return 2;
    }
    uint32_t header[c::HEADER_WORDS] = {0};
    std::memcpy(header, program.data(), std::min(program.size(), sizeof(header)));
    const long total = static_cast<long>(c::get_field(header, c::HEADER_TOTAL_BYTES));
    const long image_addr = c::get_field(header, c::HEADER_IMAGE_ADDR);
    const long baseline_addr = c::get_field(header, c::HEADER_BASELINE_ADDR);
    const long table_addr = c::get_field(header, c::HEADER_IG_TABLE_ADDR);
    const long logits_addr = c::get_field(header, c::HEADER_LOGITS_ADDR);
    const long result_addr = c::get_field(header, c::HEADER_RESULT_ADDR);
    const long attr_addr = c::get_field(header, c::HEADER_ATTR_ADDR);
    const int classes = static_cast<int>(c::get_field(header, c::HEADER_CLASSES));
    const int n = static_cast<int>(c::get_field(header, c::HEADER_INPUT_ELEMS));
    const Layout layout = {static_cast<int>(c::get_field(header, c::HEADER_IN_C)),
                           static_cast<int>(c::get_field(header, c::HEADER_IN_H)),
                           static_cast<int>(c::get_field(header, c::HEADER_IN_W)),
                           static_cast<int>(c::get_field(header, c::HEADER_TN))};
    if (total % xaihls::BEAT_BYTES != 0 || static_cast<long>(program.size()) > total) {
        std::printf("ERROR: ddr_image.bin (%d bytes) does not fit the Program's %ld bytes of DDR\n",
                    static_cast<int>(program.size()), total);
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
        Case cs;
        if (!(fields >> cs.image >> cs.image_file >> cs.method >> cs.code >> cs.target >> cs.steps >> cs.ig_table >>
              cs.baseline >> cs.logits >> cs.result >> cs.attribution)) {
            std::printf("ERROR: bad line in tb_data/cases.txt: %s\n", line.c_str());
            return 2;
        }
        std::vector<unsigned char> mem(total, 0);
        std::vector<char> image, baseline, table, logits, result, attribution;
        std::memcpy(mem.data(), program.data(), program.size());
        bool ok = read_file(data_dir + cs.image_file, image) && read_file(data_dir + cs.ig_table, table) &&
                  read_file(data_dir + cs.logits, logits) && read_file(data_dir + cs.result, result);
        if (cs.baseline != "-") ok = ok && read_file(data_dir + cs.baseline, baseline);
        if (cs.attribution != "-") ok = ok && read_file(data_dir + cs.attribution, attribution);
        if (!ok) {
            std::printf("ERROR: a file of case '%s' is missing in tb_data/\n", line.c_str());
            return 2;
        }
        if (baseline.empty()) baseline.assign(2 * n, 0);
        ok = place(mem, image_addr, image) && place(mem, baseline_addr, baseline) && place(mem, table_addr, table);
        if (!ok) {
            std::printf("ERROR: the inputs of case '%s' do not fit the Program's DDR\n", line.c_str());
            return 2;
        }

        const int status = xaihls::run_on_bytes(mem.data(), total, cs.code, cs.target, cs.steps, 1);

        cases++;
        bool same = true;
        if (status != 0) {
            std::printf("MISMATCH image %d method %s status: got %d expected 0\n", cs.image, cs.method.c_str(), status);
            same = false;
        }
        same = same && compare(cs, "logits", mem, logits_addr, classes, 2, logits, nullptr);
        same = same && compare(cs, "result", mem, result_addr, 2, 4, result, nullptr);
        if (cs.attribution != "-")
            same = same && compare(cs, "attribution", mem, attr_addr, n, 2, attribution, &layout);
        if (same) {
            std::printf("ok image %d method %s\n", cs.image, cs.method.c_str());
        } else {
            failures++;
        }
    }
    std::printf("xaihls csim: %d cases, %d mismatches\n", cases, failures);
    if (cases == 0) return 2;
    return failures ? 1 : 0;
}
