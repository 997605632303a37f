"""Engine v2 on RTL: the SystemVerilog engine of docs/engine_v2.md (hls_templates/rtl_v2/),
its parameters for a Program, its Verilator simulation and its executor."""
