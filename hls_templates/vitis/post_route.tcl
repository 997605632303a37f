# xaihls board flow (Alveo): runs inside the Vivado implementation that `v++ --link` drives,
# after route_design (Makefile: --vivado.prop run.impl_1.STEPS.ROUTE_DESIGN.TCL.POST=...).
# Writes into the project's reports/ (XAIHLS_REPORTS, set by the Makefile):
#   vivado_utilization.rpt     the compute unit's own resources (what `xaihls report` compares)
#   vivado_device_util.rpt     the whole device, shell included
#   vivado_timing_summary.rpt  timing of the compute unit's paths
# xaihls insert settings

if {[info exists ::env(XAIHLS_REPORTS)]} {
    set reports $::env(XAIHLS_REPORTS)
} else {
    set reports [file join [file dirname [file dirname [file normalize [info script]]]] reports]
}
file mkdir $reports
set cu [get_cells -hierarchical -filter "NAME =~ */$xaihls_cu"]
if {[llength $cu] != 1} {
    error "xaihls: expected one cell named $xaihls_cu in the linked design, found [llength $cu]"
}
report_utilization -cells $cu -file [file join $reports vivado_utilization.rpt]
report_utilization -file [file join $reports vivado_device_util.rpt]
report_timing_summary -cells $cu -file [file join $reports vivado_timing_summary.rpt]
puts "xaihls: reports of $cu in $reports"
