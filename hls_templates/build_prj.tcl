# Vitis HLS project of an xaihls engine: C-simulation, C synthesis, C/RTL co-simulation
# and IP export of firmware/xaihls_top.cpp. Run it from anywhere:
#   vitis_hls -f build_prj.tcl                        (Vitis HLS 2022.2 and later)
#   vitis-run --mode hls --tcl build_prj.tcl          (Vitis 2023.2 and later)
# Steps (1 runs, 0 skips): edit the defaults below, set XAIHLS_CSIM / XAIHLS_CSYNTH /
# XAIHLS_COSIM / XAIHLS_EXPORT / XAIHLS_RESET in the environment, or with vitis_hls pass
#   -tclargs csim=0 cosim=1
# The C-simulation needs no Vitis: `make csim` runs the same testbench with g++.

# xaihls insert settings

array set step {
    reset  0
    csim   1
    csynth 1
    cosim  0
    export 0
}
foreach name [array names step] {
    set var XAIHLS_[string toupper $name]
    if {[info exists ::env($var)]} {
        set step($name) $::env($var)
    }
}
if {[info exists ::argv]} {
    foreach arg $::argv {
        if {[regexp {^(\w+)=([01])$} $arg -> name value] && [info exists step($name)]} {
            set step($name) $value
        }
    }
}

# Everything is relative to this file's folder, whatever the caller's folder.
set root [file dirname [file normalize [info script]]]
cd $root

if {$step(reset)} {
    open_project -reset $project_name
} else {
    open_project $project_name
}
set_top $top
add_files firmware/xaihls_top.cpp -cflags "-std=c++14"
add_files -tb tb/xaihls_tb.cpp -cflags "-std=c++14 -Wno-unknown-pragmas"
add_files -tb firmware/weights
add_files -tb tb_data
if {$step(reset)} {
    open_solution -reset solution1 -flow_target vivado
} else {
    open_solution solution1 -flow_target vivado
}
set_part $part
create_clock -period $clock_period -name default
config_export -format ip_catalog -rtl verilog

if {$step(csim)} {
    puts "xaihls: C-simulation"
    csim_design -argv $root
}
if {$step(csynth)} {
    puts "xaihls: C synthesis"
    csynth_design
}
if {$step(cosim)} {
    puts "xaihls: C/RTL co-simulation"
    cosim_design -argv $root
}
if {$step(export)} {
    puts "xaihls: IP export"
    export_design -format ip_catalog
}
exit
