"""The HLS backend: the Engine v2 C++ (``hls_templates/firmware``) as a Vitis HLS
project and its g++ C-simulation. ``v2`` writes the project's HLS files and runs the engine in
process; ``csim`` owns the compiler, the ap_types headers and the project testbench's build.
"""
