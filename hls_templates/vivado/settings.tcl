# xaihls board flow: what this project's Vivado build is made for. Written by xaihls;
# sourced by build_bitstream.tcl, block_design.tcl and package_rtl_ip.tcl.
#   xaihls_board_part  the Vivado board files (vendor:board:name); the newest installed
#                      version is used, and the PS takes its DDR and MIO preset from it
#   xaihls_ip          hls: the Vitis HLS IP export; rtl: the SystemVerilog engine, packaged here
#   xaihls_ip_*        the engine's interface names for that IP (clock, reset, control, DDR port)
# xaihls insert settings
