# xaihls board flow (Zynq): the engine's IP in a block design with the processing system,
# then synthesis, implementation, write_bitstream, the reports `xaihls report` reads, and the
# files a PYNQ overlay needs. Run it from anywhere:
#   vivado -mode batch -source vivado/build_bitstream.tcl
#   vivado -mode batch -source vivado/build_bitstream.tcl -tclargs jobs=8
# Needs the engine as IP first: with xaihls_ip hls (settings.tcl), the Vitis HLS export
#   XAIHLS_CSIM=0 XAIHLS_EXPORT=1 vitis_hls -f build_prj.tcl
# with xaihls_ip rtl, package_rtl_ip.tcl (sourced below) packages rtl/ itself.
# Writes: vivado/xaihls_vivado/ (the Vivado project), reports/vivado_utilization.rpt,
# reports/vivado_timing_summary.rpt, vivado/overlay/xaihls.bit, .hwh (PYNQ) and .xsa (Vitis).

set here [file dirname [file normalize [info script]]]
set root [file dirname $here]
source [file join $here settings.tcl]

array set opt {jobs 4}
if {[info exists ::env(XAIHLS_JOBS)]} {
    set opt(jobs) $::env(XAIHLS_JOBS)
}
foreach arg $::argv {
    if {[regexp {^(\w+)=(\S+)$} $arg -> name value] && [info exists opt($name)]} {
        set opt($name) $value
    }
}

set proj_name xaihls_vivado
set proj_dir [file join $here $proj_name]
set bd_name xaihls_bd
set reports [file join $root reports]
set overlay [file join $here overlay]

proc xaihls_check_run {run} {
    # A failed run leaves PROGRESS short of 100%; its log says why.
    set r [get_runs $run]
    if {[get_property PROGRESS $r] ne "100%"} {
        error "xaihls: $run did not finish ([get_property STATUS $r]); see [get_property DIRECTORY $r]/runme.log"
    }
}

# --- the engine as IP -----------------------------------------------------------------
if {$xaihls_ip eq "hls"} {
    set ip_repo [file join $root $xaihls_hls_ip_repo]
    if {![file isdirectory $ip_repo]} {
        error "xaihls: no exported HLS IP in $ip_repo; run `XAIHLS_CSIM=0 XAIHLS_EXPORT=1 vitis_hls -f build_prj.tcl` in $root first"
    }
} else {
    source [file join $here package_rtl_ip.tcl]
    set ip_repo $xaihls_rtl_ip_repo
}

# --- project, board files, IP catalog -------------------------------------------------
create_project -force $proj_name $proj_dir -part $xaihls_part
set board_parts [get_board_parts -quiet -latest_file_version "${xaihls_board_part}:*"]
if {[llength $board_parts] == 0} {
    error "xaihls: the Vivado board files of $xaihls_board ($xaihls_board_part) are not installed; install them (Vivado: Tools > Vivado Store > Boards, or the board vendor's files in XILINX_VIVADO/data/boards/board_files) and run again"
}
set_property board_part [lindex $board_parts 0] [current_project]
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog -rebuild
if {[llength [get_ipdefs -quiet $xaihls_ip_vlnv]] == 0} {
    error "xaihls: IP $xaihls_ip_vlnv is not in the catalog built from $ip_repo"
}

# --- block design (block_design.tcl: PS, engine, SmartConnects, reset, interrupt) -------
source [file join $here block_design.tcl]
xaihls_block_design $bd_name
validate_bd_design
save_bd_design
set bd_file [get_files ${bd_name}.bd]
generate_target all $bd_file
add_files -norecurse [make_wrapper -files $bd_file -top]
set_property top ${bd_name}_wrapper [current_fileset]
update_compile_order -fileset sources_1

# --- synthesis, implementation, bitstream ---------------------------------------------
launch_runs synth_1 -jobs $opt(jobs)
wait_on_run synth_1
xaihls_check_run synth_1
launch_runs impl_1 -to_step write_bitstream -jobs $opt(jobs)
wait_on_run impl_1
xaihls_check_run impl_1

# --- reports (read by `xaihls report`) --------------------------------------------------
open_run impl_1
file mkdir $reports
report_utilization -file [file join $reports vivado_utilization.rpt]
report_timing_summary -file [file join $reports vivado_timing_summary.rpt]
set wns [get_property SLACK [get_timing_paths -delay_type max -max_paths 1 -nworst 1]]
if {$wns ne "" && $wns < 0} {
    puts "CRITICAL WARNING: xaihls: timing is not met (WNS $wns ns at $xaihls_clock_mhz MHz); the bitstream may compute wrong results: lower clock_mhz and build again"
}

# --- the PYNQ overlay: .bit and .hwh of one name, side by side; .xsa for Vitis/PetaLinux --
file mkdir $overlay
set bit [file join [get_property DIRECTORY [get_runs impl_1]] ${bd_name}_wrapper.bit]
file copy -force $bit [file join $overlay xaihls.bit]
# Vivado 2020.2 and later keep generated block-design files under .gen, earlier under .srcs.
set hwh [glob -nocomplain \
    [file join $proj_dir ${proj_name}.gen sources_1 bd $bd_name hw_handoff ${bd_name}.hwh] \
    [file join $proj_dir ${proj_name}.srcs sources_1 bd $bd_name hw_handoff ${bd_name}.hwh]]
if {[llength $hwh] == 0} {
    error "xaihls: no ${bd_name}.hwh under $proj_dir (generate_target did not write the hardware handoff)"
}
file copy -force [lindex $hwh 0] [file join $overlay xaihls.hwh]
write_hw_platform -fixed -include_bit -force -file [file join $overlay xaihls.xsa]
puts "xaihls: bitstream and overlay in $overlay; reports in $reports"
