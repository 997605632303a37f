# xaihls board flow: the SystemVerilog engine (rtl/) packaged as a Vivado IP, for a block
# design. Sourced by build_bitstream.tcl when settings.tcl says `xaihls_ip rtl`; it can also
# run alone (vivado -mode batch -source vivado/package_rtl_ip.tcl).
# Sets xaihls_rtl_ip_repo (the IP repository) and xaihls_ip_params (the top's parameters for
# this network, read from rtl/xaihls_params.svh, as CONFIG.<NAME> values of the IP cell).
# Interfaces of the packaged IP: s_axil (AXI4-Lite control, 4 KiB of registers), m_axi (AXI4
# master to DDR), clk, rst (active high, synchronous), interrupt (level, active high).

set here [file dirname [file normalize [info script]]]
set root [file dirname $here]
source [file join $here settings.tcl]
set rtl_dir [file join $root rtl]
set xaihls_rtl_ip_repo [file join $here ip_rtl]

proc xaihls_read_lines {path} {
    set f [open $path r]
    set text [read $f]
    close $f
    return [split $text "\n"]
}

# `define XAIHLS_<NAME> <value>: the only per-network part of the RTL
set xaihls_ip_params {}
foreach line [xaihls_read_lines [file join $rtl_dir xaihls_params.svh]] {
    if {[regexp {^`define XAIHLS_(\w+)\s+(\d+)\s*$} $line -> name value]} {
        lappend xaihls_ip_params CONFIG.$name $value
    }
}
if {[llength $xaihls_ip_params] == 0} {
    error "xaihls: no `define XAIHLS_<NAME> <value> lines in [file join $rtl_dir xaihls_params.svh]"
}
set sources {}
foreach line [xaihls_read_lines [file join $rtl_dir sources.f]] {
    set line [string trim $line]
    if {$line ne ""} {
        lappend sources [file join $rtl_dir $line]
    }
}

create_project -force xaihls_rtl_ip [file join $here xaihls_rtl_ip] -part $xaihls_part
add_files -norecurse $sources
set_property file_type SystemVerilog [get_files -of_objects [get_filesets sources_1]]
set_property top xaihls_top [get_filesets sources_1]
update_compile_order -fileset sources_1
ipx::package_project -root_dir $xaihls_rtl_ip_repo -vendor xaihls.org -library rtl \
    -taxonomy /UserIP -import_files -force
set core [ipx::current_core]
set_property name xaihls_top $core
set_property version 1.0 $core
set_property display_name "xaihls engine (SystemVerilog)" $core

# AXI interfaces from the port prefixes (s_axil_*, m_axi_*); named for block_design.tcl.
ipx::infer_bus_interfaces xilinx.com:interface:aximm_rtl:1.0 $core
foreach {prefix name} {s_axil_ s_axil m_axi_ m_axi} {
    set found {}
    foreach busif [ipx::get_bus_interfaces -of_objects $core] {
        if {[string match ${prefix}* [get_property physical_name [lindex [ipx::get_port_maps -of_objects $busif] 0]]]} {
            lappend found $busif
        }
    }
    if {[llength $found] != 1} {
        error "xaihls: expected one AXI interface on the ${prefix}* ports, found [llength $found]"
    }
    set_property name $name [lindex $found 0]
}
foreach {port vlnv} {
    clk xilinx.com:signal:clock_rtl:1.0
    rst xilinx.com:signal:reset_rtl:1.0
    interrupt xilinx.com:signal:interrupt_rtl:1.0
} {
    if {[llength [ipx::get_bus_interfaces $port -of_objects $core]] == 0} {
        ipx::infer_bus_interface $port $vlnv $core
    }
}
foreach {busif parameter value} {rst POLARITY ACTIVE_HIGH interrupt SENSITIVITY LEVEL_HIGH} {
    set bif [ipx::get_bus_interfaces $busif -of_objects $core]
    if {[llength [ipx::get_bus_parameters $parameter -of_objects $bif]] == 0} {
        ipx::add_bus_parameter $parameter $bif
    }
    set_property value $value [ipx::get_bus_parameters $parameter -of_objects $bif]
}
ipx::associate_bus_interfaces -busif s_axil -clock clk $core
ipx::associate_bus_interfaces -busif m_axi -clock clk $core
ipx::associate_bus_interfaces -clock clk -reset rst $core

# The control registers (docs/program.md) as one 4 KiB block the address editor can place.
if {[llength [ipx::get_memory_maps s_axil -of_objects $core]] == 0} {
    ipx::add_memory_map s_axil $core
}
set_property slave_memory_map_ref s_axil [ipx::get_bus_interfaces s_axil -of_objects $core]
set mmap [ipx::get_memory_maps s_axil -of_objects $core]
if {[llength [ipx::get_address_blocks reg0 -of_objects $mmap]] == 0} {
    ipx::add_address_block reg0 $mmap
}
set_property range 4096 [ipx::get_address_blocks reg0 -of_objects $mmap]

ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
puts "xaihls: packaged rtl/ as xaihls.org:rtl:xaihls_top:1.0 in $xaihls_rtl_ip_repo"
