# Stand-ins for the Vivado commands that xaihls's board-flow scripts use, for running those
# scripts under a plain tclsh (tests/test_board_flow.py). Not Vivado: no synthesis happens.
#
#   tclsh vivado_stubs.tcl MODEL LOG SCRIPT ?ARG ...?
#
# MODEL is a tcl file the test writes: the engine IPs' interface names (from the engine's own
# sources) in the form of the ::ip_model entries below. Every stub
#   - accepts only the options the real command has (UG835, Vivado Tcl Command Reference),
#     so a misspelt option fails; a command that is not stubbed fails as unknown;
#   - records the call in LOG, one line a call, fields separated by \x1f;
#   - keeps the state a Vivado session would (project part, board part, IP catalog, block
#     design cells, their CONFIG properties, nets) and fails as Vivado would on a wrong part,
#     an unknown IP, an unknown CONFIG property, a pin that the cell does not have or has not
#     enabled, a net with two drivers or none, an interface net that is not master-to-slave,
#     and (validate_bd_design) an enabled input left unconnected;
#   - writes the files the real command would, empty but present (bitstream, .hwh, reports).
# The IP models below hold only the pins and properties these scripts use; their names come
# from public block-design scripts of these IPs (Vivado 2019.1 to 2024.1 exports, hls4ml's
# VivadoAccelerator templates, the PYNQ and Kria board repositories).

lassign $argv model_file log_file script
set ::argv [lrange $argv 3 end]
set ::argc [llength $::argv]
set ::stub_log [open $log_file w]
fconfigure $::stub_log -translation lf

proc stub_record {cmd args} {
    set fields [list $cmd]
    foreach a $args {
        lappend fields [string map {"\n" "\\n"} $a]
    }
    puts $::stub_log [join $fields "\x1f"]
    flush $::stub_log
}

proc stub_fail {msg} {
    stub_record STUB_ERROR $msg
    error "stub: $msg"
}

# Options of a command: name -> 1 (takes a value) or 0 (a flag). Returns {options positional}.
proc stub_parse {cmd argv spec} {
    set opts [dict create]
    set pos {}
    for {set i 0} {$i < [llength $argv]} {incr i} {
        set a [lindex $argv $i]
        if {[string match -* $a] && ![string is double -strict $a]} {
            if {![dict exists $spec $a]} {
                stub_fail "$cmd: unknown option '$a' (has: [join [dict keys $spec] {, }])"
            }
            if {[dict get $spec $a]} {
                incr i
                if {$i >= [llength $argv]} {
                    stub_fail "$cmd: option '$a' needs a value"
                }
                dict set opts $a [lindex $argv $i]
            } else {
                dict set opts $a 1
            }
        } else {
            lappend pos $a
        }
    }
    return [list $opts $pos]
}

proc stub_touch {path} {
    file mkdir [file dirname $path]
    set f [open $path w]
    puts $f "stub output of tests/tcl/vivado_stubs.tcl, not of Vivado"
    close $f
}

# --------------------------------------------------------------------------- the catalogs

# Board files: vendor:board:name:version -> the part of the board.
set ::board_catalog {
    tul.com.tw:pynq-z2:part0:1.0 xc7z020clg400-1
    avnet.com:ultra96v2:part0:1.2 xczu3eg-sbva484-1-e
    xilinx.com:kv260_som:part0:1.4 xck26-sfvc784-2LV-c
    xilinx.com:zcu102:part0:3.4 xczu9eg-ffvb1156-2-e
    xilinx.com:zcu104:part0:1.1 xczu7ev-ffvc1156-2-e
}

# IP model: vendor:library:name -> dict with
#   props   CONFIG properties a script may set, each with its legal values ({} = any)
#   ro      read-only CONFIG properties -> the property whose value they report
#   intf    interface pins: name mode condition (condition: properties that must be 1)
#   pins    pins: name direction condition
#   preset  properties the board preset (apply_bd_automation) sets
set ::ip_model {
    xilinx.com:ip:processing_system7 {
        props {
            PCW_USE_M_AXI_GP0 {0 1} PCW_USE_S_AXI_HP0 {0 1} PCW_S_AXI_HP0_DATA_WIDTH {32 64}
            PCW_EN_CLK0_PORT {0 1} PCW_FPGA0_PERIPHERAL_FREQMHZ {} PCW_EN_RST0_PORT {0 1}
            PCW_USE_FABRIC_INTERRUPT {0 1} PCW_IRQ_F2P_INTR {0 1}
        }
        ro {PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ PCW_FPGA0_PERIPHERAL_FREQMHZ}
        intf {
            M_AXI_GP0 master PCW_USE_M_AXI_GP0
            S_AXI_HP0 slave PCW_USE_S_AXI_HP0
            DDR external {}
            FIXED_IO external {}
        }
        pins {
            FCLK_CLK0 O PCW_EN_CLK0_PORT
            FCLK_RESET0_N O PCW_EN_RST0_PORT
            M_AXI_GP0_ACLK I PCW_USE_M_AXI_GP0
            S_AXI_HP0_ACLK I PCW_USE_S_AXI_HP0
            IRQ_F2P I {PCW_USE_FABRIC_INTERRUPT PCW_IRQ_F2P_INTR}
        }
        preset {PCW_USE_M_AXI_GP0 1 PCW_EN_CLK0_PORT 1 PCW_EN_RST0_PORT 1}
        rule xilinx.com:bd_rule:processing_system7
    }
    xilinx.com:ip:zynq_ultra_ps_e {
        props {
            PSU__USE__M_AXI_GP0 {0 1} PSU__USE__M_AXI_GP1 {0 1} PSU__USE__M_AXI_GP2 {0 1}
            PSU__USE__S_AXI_GP2 {0 1} PSU__SAXIGP2__DATA_WIDTH {32 64 128}
            PSU__FPGA_PL0_ENABLE {0 1} PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {}
            PSU__USE__FABRIC__RST {0 1} PSU__NUM_FABRIC_RESETS {1 2 3 4} PSU__USE__IRQ0 {0 1}
        }
        ro {PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ}
        intf {
            M_AXI_HPM0_FPD master PSU__USE__M_AXI_GP0
            M_AXI_HPM1_FPD master PSU__USE__M_AXI_GP1
            M_AXI_HPM0_LPD master PSU__USE__M_AXI_GP2
            S_AXI_HP0_FPD slave PSU__USE__S_AXI_GP2
        }
        pins {
            pl_clk0 O PSU__FPGA_PL0_ENABLE
            pl_resetn0 O PSU__USE__FABRIC__RST
            pl_ps_irq0 I PSU__USE__IRQ0
            maxihpm0_fpd_aclk I PSU__USE__M_AXI_GP0
            maxihpm1_fpd_aclk I PSU__USE__M_AXI_GP1
            maxihpm0_lpd_aclk I PSU__USE__M_AXI_GP2
            saxihp0_fpd_aclk I PSU__USE__S_AXI_GP2
        }
        preset {PSU__USE__M_AXI_GP0 1 PSU__USE__M_AXI_GP1 1 PSU__USE__M_AXI_GP2 1 PSU__FPGA_PL0_ENABLE 1 PSU__USE__FABRIC__RST 1}
        rule xilinx.com:bd_rule:zynq_ultra_ps_e
    }
    xilinx.com:ip:smartconnect {
        props {NUM_SI {1 2 3 4 5 6 7 8} NUM_MI {1 2 3 4 5 6 7 8}}
        ro {}
        intf {}
        pins {aclk I {} aresetn I {}}
        preset {}
        rule {}
    }
    xilinx.com:ip:proc_sys_reset {
        props {}
        ro {}
        intf {}
        pins {
            slowest_sync_clk I {} ext_reset_in I {} peripheral_aresetn O {} peripheral_reset O {}
            interconnect_aresetn O {}
        }
        preset {}
        rule {}
    }
    xilinx.com:ip:axi_intc {
        props {C_IRQ_CONNECTION {0 1}}
        ro {}
        intf {s_axi slave {}}
        pins {s_axi_aclk I {} s_axi_aresetn I {} intr I {} irq O C_IRQ_CONNECTION}
        preset {}
        rule {}
    }
}
# The engine IPs (the test's MODEL file adds them to ::ip_model and ::ip_repo_vlnvs).
set ::ip_repo_vlnvs {}
source $model_file

# Every connectable input of these cells must be driven for validate_bd_design.
set ::smartconnect_defaults {NUM_SI 1 NUM_MI 2}

# --------------------------------------------------------------------------- session state

set ::project {}            ;# dict: name dir part board_part ip_repo_paths
set ::catalog {}            ;# VLNVs (vendor:library:name:version) in the IP catalog
set ::bd {}                 ;# the block design's name
set ::cells [dict create]   ;# cell name -> dict: vlnv key config
set ::nets {}               ;# list of nets, each a list of /cell/pin
set ::intf_nets {}          ;# list of {a b}
set ::runs [dict create]    ;# run name -> progress
set ::ipx_core {}           ;# the packaged core: dict

proc stub_key {vlnv} {
    return [join [lrange [split $vlnv :] 0 2] :]
}

proc stub_model {cell} {
    return [dict get $::ip_model [dict get $::cells $cell key]]
}

proc stub_config {cell name} {
    set config [dict get $::cells $cell config]
    if {[dict exists $config $name]} {
        return [dict get $config $name]
    }
    if {[dict get $::cells $cell key] eq "xilinx.com:ip:smartconnect" && [dict exists $::smartconnect_defaults $name]} {
        return [dict get $::smartconnect_defaults $name]
    }
    return 0
}

proc stub_enabled {cell condition} {
    foreach prop $condition {
        if {[stub_config $cell $prop] ne "1"} {
            return 0
        }
    }
    return 1
}

# Interface pins of a cell: name -> mode, for what its configuration enables.
proc stub_cell_intf {cell} {
    set result [dict create]
    set model [stub_model $cell]
    foreach {name mode condition} [dict get $model intf] {
        if {[stub_enabled $cell $condition]} {
            dict set result $name $mode
        }
    }
    if {[dict get $::cells $cell key] eq "xilinx.com:ip:smartconnect"} {
        for {set i 0} {$i < [stub_config $cell NUM_SI]} {incr i} {
            dict set result [format S%02d_AXI $i] slave
        }
        for {set i 0} {$i < [stub_config $cell NUM_MI]} {incr i} {
            dict set result [format M%02d_AXI $i] master
        }
    }
    return $result
}

proc stub_cell_pins {cell} {
    set result [dict create]
    foreach {name dir condition} [dict get [stub_model $cell] pins] {
        if {[stub_enabled $cell $condition]} {
            dict set result $name $dir
        }
    }
    return $result
}

proc stub_split_path {path kind} {
    set path [string trimleft $path /]
    set parts [split $path /]
    if {[llength $parts] != 2} {
        stub_fail "$kind '$path': expected <cell>/<pin>"
    }
    lassign $parts cell pin
    if {![dict exists $::cells $cell]} {
        stub_fail "$kind '$path': no cell '$cell' in the block design (cells: [join [dict keys $::cells] {, }])"
    }
    return [list $cell $pin]
}

# --------------------------------------------------------------------------- project

proc create_project {args} {
    stub_record create_project {*}$args
    lassign [stub_parse create_project $args {-part 1 -force 0 -in_memory 0 -ip 0 -rtl_kernel 0 -quiet 0}] opts pos
    if {[llength $pos] != 2 || ![dict exists $opts -part]} {
        stub_fail "create_project: expected NAME DIR -part PART, got '$args'"
    }
    set ::project [dict create name [lindex $pos 0] dir [lindex $pos 1] part [dict get $opts -part] board_part {} ip_repo_paths {}]
    set ::catalog {}
    file mkdir [lindex $pos 1]
    return [lindex $pos 0]
}

proc stub_need_project {cmd} {
    if {$::project eq {}} {
        stub_fail "$cmd: no open project"
    }
}

proc current_project {args} {
    stub_record current_project {*}$args
    stub_need_project current_project
    return project:[dict get $::project name]
}

proc close_project {args} {
    stub_record close_project {*}$args
    stub_parse close_project $args {-delete 0 -quiet 0}
    stub_need_project close_project
    set ::project {}
    set ::cells [dict create]
    set ::nets {}
    set ::intf_nets {}
    set ::bd {}
}

proc current_fileset {args} {
    stub_record current_fileset {*}$args
    stub_need_project current_fileset
    return fileset:sources_1
}

proc get_filesets {args} {
    stub_record get_filesets {*}$args
    lassign [stub_parse get_filesets $args {-quiet 0}] opts pos
    foreach name $pos {
        if {$name ni {sources_1 constrs_1 sim_1}} {
            stub_fail "get_filesets: no fileset '$name'"
        }
    }
    return [lmap name $pos {string cat fileset: $name}]
}

proc get_board_parts {args} {
    stub_record get_board_parts {*}$args
    lassign [stub_parse get_board_parts $args {-quiet 0 -latest_file_version 0 -latest_hw_revision 0 -filter 1 -regexp 0 -nocase 0 -of_objects 1}] opts pos
    set found {}
    foreach {name part} $::board_catalog {
        foreach pattern $pos {
            if {[string match $pattern $name]} {
                lappend found $name
            }
        }
    }
    return $found
}

proc stub_set_project_property {name value} {
    switch -- $name {
        board_part {
            if {![dict exists $::board_catalog $value]} {
                stub_fail "set_property board_part: '$value' is not an installed board part"
            }
            set board_part_part [dict get $::board_catalog $value]
            if {$board_part_part ne [dict get $::project part]} {
                stub_fail "board part $value is for $board_part_part, but the project is for [dict get $::project part]"
            }
            dict set ::project board_part $value
        }
        ip_repo_paths {
            foreach path $value {
                if {![file isdirectory $path]} {
                    stub_fail "ip_repo_paths: '$path' is not a folder"
                }
            }
            dict set ::project ip_repo_paths $value
        }
        default {
            stub_fail "set_property: the stub does not know project property '$name'"
        }
    }
}

proc update_ip_catalog {args} {
    stub_record update_ip_catalog {*}$args
    stub_parse update_ip_catalog $args {-rebuild 0 -quiet 0 -repo_path 1 -add_ip 1}
    stub_need_project update_ip_catalog
    # Xilinx IP is always in the catalog; the engine IPs once a repository holding them is set.
    set ::catalog {}
    foreach key [dict keys $::ip_model] {
        if {[string match xilinx.com:ip:* $key]} {
            lappend ::catalog $key:1.0
        }
    }
    if {[llength [dict get $::project ip_repo_paths]] > 0} {
        lappend ::catalog {*}$::ip_repo_vlnvs
    }
}

proc get_ipdefs {args} {
    stub_record get_ipdefs {*}$args
    lassign [stub_parse get_ipdefs $args {-quiet 0 -all 0 -filter 1 -regexp 0 -name 0}] opts pos
    set found {}
    foreach vlnv $::catalog {
        foreach pattern $pos {
            if {[string match $pattern $vlnv]} {
                lappend found $vlnv
            }
        }
    }
    return $found
}

proc get_files {args} {
    stub_record get_files {*}$args
    lassign [stub_parse get_files $args {-quiet 0 -all 0 -of_objects 1 -filter 1 -compile_order 1 -used_in 1}] opts pos
    stub_need_project get_files
    if {[dict exists $opts -of_objects]} {
        return [list file:all-sources]
    }
    set found {}
    foreach pattern $pos {
        if {$::bd ne {} && [string match $pattern $::bd.bd]} {
            lappend found [stub_bd_file]
        } else {
            stub_fail "get_files: no file matches '$pattern'"
        }
    }
    return $found
}

proc stub_bd_file {} {
    set name [dict get $::project name]
    return [file join [dict get $::project dir] $name.srcs sources_1 bd $::bd $::bd.bd]
}

proc add_files {args} {
    stub_record add_files {*}$args
    lassign [stub_parse add_files $args {-norecurse 0 -fileset 1 -quiet 0 -scan_for_includes 0}] opts pos
    stub_need_project add_files
    foreach group $pos {
        foreach path $group {
            if {![file exists $path]} {
                stub_fail "add_files: '$path' does not exist"
            }
        }
    }
}

proc update_compile_order {args} {
    stub_record update_compile_order {*}$args
    stub_parse update_compile_order $args {-fileset 1 -quiet 0}
}

# --------------------------------------------------------------------------- properties

proc set_property {args} {
    stub_record set_property {*}$args
    lassign [stub_parse set_property $args {-dict 1 -quiet 0 -verbose 0}] opts pos
    if {[dict exists $opts -dict]} {
        set pairs [dict get $opts -dict]
        if {[llength $pos] != 1 || [llength $pairs] % 2} {
            stub_fail "set_property -dict: expected an even list and one object, got '$args'"
        }
        set objects [lindex $pos 0]
    } else {
        if {[llength $pos] != 3} {
            stub_fail "set_property: expected NAME VALUE OBJECTS, got '$args'"
        }
        set pairs [lrange $pos 0 1]
        set objects [lindex $pos 2]
    }
    if {[llength $objects] == 0} {
        stub_fail "set_property: no object (an empty get_* result) for '$pairs'"
    }
    foreach object $objects {
        foreach {name value} $pairs {
            stub_set_one $object $name $value
        }
    }
}

proc stub_set_one {object name value} {
    if {[string match project:* $object]} {
        stub_set_project_property $name $value
    } elseif {[string match /* $object]} {
        set cell [string trimleft $object /]
        if {![dict exists $::cells $cell]} {
            stub_fail "set_property: no cell '$cell'"
        }
        if {![string match CONFIG.* $name]} {
            stub_fail "set_property: '$name' on cell $cell is not a CONFIG property"
        }
        set prop [string range $name 7 end]
        set props [dict get [stub_model $cell] props]
        if {![dict exists $props $prop]} {
            stub_fail "set_property: $cell ([dict get $::cells $cell key]) has no property CONFIG.$prop"
        }
        set legal [dict get $props $prop]
        if {[llength $legal] > 0 && $value ni $legal} {
            stub_fail "set_property: CONFIG.$prop of $cell must be one of $legal, got '$value'"
        }
        dict set ::cells $cell config $prop $value
    } elseif {[regexp {^(fileset|file|run|ipx):} $object]} {
        stub_ipx_set $object $name $value
    } else {
        stub_fail "set_property: '$object' is not an object the stub knows"
    }
}

proc get_property {args} {
    stub_record get_property {*}$args
    lassign [stub_parse get_property $args {-quiet 0 -min 0 -max 0}] opts pos
    if {[llength $pos] != 2} {
        stub_fail "get_property: expected NAME OBJECT, got '$args'"
    }
    lassign $pos name object
    if {[string match /* $object]} {
        set cell [string trimleft $object /]
        set prop [string range $name 7 end]
        set model [stub_model $cell]
        if {[dict exists $model ro $prop]} {
            return [stub_config $cell [dict get $model ro $prop]]
        }
        if {![dict exists $model props $prop]} {
            stub_fail "get_property: $cell has no property $name"
        }
        return [stub_config $cell $prop]
    }
    if {[string match run:* $object]} {
        set run [string range $object 4 end]
        switch -- $name {
            PROGRESS { return [dict get $::runs $run] }
            STATUS { return "stub status" }
            DIRECTORY { return [file join [dict get $::project dir] [dict get $::project name].runs $run] }
        }
    }
    if {[string match path:* $object] && $name eq "SLACK"} {
        return 0.250
    }
    if {[string match ipx:* $object]} {
        return [stub_ipx_get $object $name]
    }
    stub_fail "get_property: the stub does not know $name of '$object'"
}

# --------------------------------------------------------------------------- block design

proc create_bd_design {args} {
    stub_record create_bd_design {*}$args
    lassign [stub_parse create_bd_design $args {-dir 1 -cell 1 -quiet 0}] opts pos
    stub_need_project create_bd_design
    set ::bd [lindex $pos 0]
    set ::cells [dict create]
    set ::nets {}
    set ::intf_nets {}
    return $::bd
}

proc current_bd_design {args} {
    stub_record current_bd_design {*}$args
    return $::bd
}

proc create_bd_cell {args} {
    stub_record create_bd_cell {*}$args
    lassign [stub_parse create_bd_cell $args {-type 1 -vlnv 1 -reference 1 -quiet 0}] opts pos
    if {$::bd eq {}} {
        stub_fail "create_bd_cell: no block design"
    }
    if {[dict get $opts -type] ne "ip" || ![dict exists $opts -vlnv] || [llength $pos] != 1} {
        stub_fail "create_bd_cell: expected -type ip -vlnv VLNV NAME, got '$args'"
    }
    set vlnv [dict get $opts -vlnv]
    set key [stub_key $vlnv]
    set in_catalog 0
    foreach entry $::catalog {
        if {$entry eq $vlnv || [stub_key $entry] eq $vlnv} {
            set in_catalog 1
        }
    }
    if {!$in_catalog || ![dict exists $::ip_model $key]} {
        stub_fail "create_bd_cell: IP '$vlnv' is not in the catalog"
    }
    set name [lindex $pos 0]
    if {[dict exists $::cells $name]} {
        stub_fail "create_bd_cell: a cell named '$name' exists"
    }
    dict set ::cells $name [dict create vlnv $vlnv key $key config [dict create]]
    return /$name
}

proc get_bd_cells {args} {
    stub_record get_bd_cells {*}$args
    lassign [stub_parse get_bd_cells $args {-quiet 0 -filter 1 -hierarchical 0 -of_objects 1}] opts pos
    set found {}
    foreach name $pos {
        set name [string trimleft $name /]
        if {![dict exists $::cells $name]} {
            stub_fail "get_bd_cells: no cell '$name'"
        }
        lappend found /$name
    }
    return $found
}

proc get_bd_pins {args} {
    stub_record get_bd_pins {*}$args
    lassign [stub_parse get_bd_pins $args {-quiet 0 -filter 1 -hierarchical 0 -of_objects 1}] opts pos
    set found {}
    foreach path $pos {
        lassign [stub_split_path $path pin] cell pin
        set pins [stub_cell_pins $cell]
        if {![dict exists $pins $pin]} {
            stub_fail "get_bd_pins: $cell ([dict get $::cells $cell key]) has no pin '$pin' as configured (has: [join [dict keys $pins] {, }])"
        }
        lappend found /$cell/$pin
    }
    return $found
}

proc get_bd_intf_pins {args} {
    stub_record get_bd_intf_pins {*}$args
    lassign [stub_parse get_bd_intf_pins $args {-quiet 0 -filter 1 -hierarchical 0 -of_objects 1}] opts pos
    set found {}
    foreach path $pos {
        lassign [stub_split_path $path "interface pin"] cell pin
        set intf [stub_cell_intf $cell]
        if {![dict exists $intf $pin]} {
            stub_fail "get_bd_intf_pins: $cell ([dict get $::cells $cell key]) has no interface '$pin' as configured (has: [join [dict keys $intf] {, }])"
        }
        lappend found /$cell/$pin
    }
    return $found
}

proc apply_bd_automation {args} {
    stub_record apply_bd_automation {*}$args
    lassign [stub_parse apply_bd_automation $args {-rule 1 -config 1 -dict 1 -opts 1}] opts pos
    if {[llength $pos] != 1 || [llength [lindex $pos 0]] != 1} {
        stub_fail "apply_bd_automation: expected one object, got '$pos'"
    }
    set cell [string trimleft [lindex $pos 0] /]
    if {![dict exists $::cells $cell]} {
        stub_fail "apply_bd_automation: no cell '$cell'"
    }
    set model [stub_model $cell]
    if {[dict get $opts -rule] ne [dict get $model rule]} {
        stub_fail "apply_bd_automation: rule [dict get $opts -rule] does not apply to $cell ([dict get $::cells $cell key])"
    }
    set config [dict get $opts -config]
    if {![dict exists $config apply_board_preset] || [dict get $config apply_board_preset] ne "1"} {
        stub_fail "apply_bd_automation: the board preset is not applied (-config apply_board_preset 1)"
    }
    if {[dict get $::project board_part] eq {}} {
        stub_fail "apply_bd_automation: a board preset needs the project's board_part"
    }
    foreach {prop value} [dict get $model preset] {
        dict set ::cells $cell config $prop $value
    }
}

proc connect_bd_net {args} {
    stub_record connect_bd_net {*}$args
    lassign [stub_parse connect_bd_net $args {-net 1 -quiet 0}] opts pos
    set pins {}
    foreach group $pos {
        lappend pins {*}$group
    }
    if {[llength $pins] < 2} {
        stub_fail "connect_bd_net: needs two pins or more, got '$pos' (an empty get_bd_pins?)"
    }
    # merge into the nets the pins are on already
    set merged $pins
    set rest {}
    foreach net $::nets {
        set overlap 0
        foreach pin $pins {
            if {$pin in $net} {
                set overlap 1
            }
        }
        if {$overlap} {
            lappend merged {*}$net
        } else {
            lappend rest $net
        }
    }
    set merged [lsort -unique $merged]
    set drivers {}
    foreach pin $merged {
        lassign [stub_split_path $pin pin] cell name
        if {[dict get [stub_cell_pins $cell] $name] eq "O"} {
            lappend drivers $pin
        }
    }
    if {[llength $drivers] > 1} {
        stub_fail "connect_bd_net: a net with several drivers: [join $drivers {, }]"
    }
    lappend rest $merged
    set ::nets $rest
}

proc connect_bd_intf_net {args} {
    stub_record connect_bd_intf_net {*}$args
    lassign [stub_parse connect_bd_intf_net $args {-intf_net 1 -boundary_type 1 -quiet 0}] opts pos
    if {[llength $pos] != 2} {
        stub_fail "connect_bd_intf_net: expected two interface pins, got '$pos'"
    }
    set modes {}
    foreach path $pos {
        if {[llength $path] != 1} {
            stub_fail "connect_bd_intf_net: '$path' is not one interface pin"
        }
        lassign [stub_split_path $path "interface pin"] cell pin
        lappend modes [dict get [stub_cell_intf $cell] $pin]
        foreach net $::intf_nets {
            if {$path in $net} {
                stub_fail "connect_bd_intf_net: $path is connected already"
            }
        }
    }
    if {[lsort $modes] ne {master slave}} {
        stub_fail "connect_bd_intf_net: [lindex $pos 0] ([lindex $modes 0]) to [lindex $pos 1] ([lindex $modes 1]) is not master to slave"
    }
    lappend ::intf_nets $pos
}

proc assign_bd_address {args} {
    stub_record assign_bd_address {*}$args
    stub_parse assign_bd_address $args {-offset 1 -range 1 -target_address_space 1 -quiet 0 -force 0}
}

proc validate_bd_design {args} {
    stub_record validate_bd_design {*}$args
    stub_parse validate_bd_design $args {-force 0 -quiet 0}
    set connected {}
    foreach net $::nets {
        lappend connected {*}$net
        set drivers 0
        foreach pin $net {
            lassign [stub_split_path $pin pin] cell name
            if {[dict get [stub_cell_pins $cell] $name] eq "O"} {
                incr drivers
            }
        }
        if {$drivers != 1} {
            stub_fail "validate_bd_design: net {$net} has $drivers drivers"
        }
    }
    set intf_connected {}
    foreach net $::intf_nets {
        lappend intf_connected {*}$net
    }
    dict for {cell info} $::cells {
        dict for {pin dir} [stub_cell_pins $cell] {
            if {$dir eq "I" && "/$cell/$pin" ni $connected} {
                stub_fail "validate_bd_design: input /$cell/$pin is not connected"
            }
        }
        dict for {pin mode} [stub_cell_intf $cell] {
            if {$mode ne "external" && "/$cell/$pin" ni $intf_connected} {
                stub_fail "validate_bd_design: interface /$cell/$pin is not connected"
            }
        }
    }
}

proc save_bd_design {args} {
    stub_record save_bd_design {*}$args
}

proc regenerate_bd_layout {args} {
    stub_record regenerate_bd_layout {*}$args
}

proc generate_target {args} {
    stub_record generate_target {*}$args
    lassign [stub_parse generate_target $args {-force 0 -quiet 0}] opts pos
    if {[lindex $pos 1] ne [stub_bd_file]} {
        stub_fail "generate_target: '[lindex $pos 1]' is not the block design file"
    }
    # Vivado 2020.2 and later: generated files under <project>.gen
    set name [dict get $::project name]
    stub_touch [file join [dict get $::project dir] $name.gen sources_1 bd $::bd hw_handoff $::bd.hwh]
}

proc make_wrapper {args} {
    stub_record make_wrapper {*}$args
    lassign [stub_parse make_wrapper $args {-files 1 -top 0 -import 0 -fileset 1 -inst_template 0 -testbench 0 -force 0}] opts pos
    if {[dict get $opts -files] ne [stub_bd_file]} {
        stub_fail "make_wrapper: -files '[dict get $opts -files]' is not the block design file"
    }
    set name [dict get $::project name]
    set wrapper [file join [dict get $::project dir] $name.gen sources_1 bd $::bd hdl ${::bd}_wrapper.v]
    stub_touch $wrapper
    return $wrapper
}

# --------------------------------------------------------------------------- runs and reports

proc get_runs {args} {
    stub_record get_runs {*}$args
    lassign [stub_parse get_runs $args {-quiet 0 -filter 1}] opts pos
    foreach run $pos {
        if {$run ni {synth_1 impl_1}} {
            stub_fail "get_runs: no run '$run'"
        }
    }
    return [lmap run $pos {string cat run: $run}]
}

proc launch_runs {args} {
    stub_record launch_runs {*}$args
    lassign [stub_parse launch_runs $args {-jobs 1 -to_step 1 -next_step 0 -quiet 0 -scripts_only 0}] opts pos
    stub_need_project launch_runs
    foreach run $pos {
        if {$run ni {synth_1 impl_1}} {
            stub_fail "launch_runs: no run '$run'"
        }
        if {$run eq "impl_1" && [dict get $::runs synth_1] ne "100%"} {
            stub_fail "launch_runs impl_1 before synth_1 finished"
        }
        dict set ::runs $run 100%
    }
    if {[dict exists $opts -to_step]} {
        if {[dict get $opts -to_step] ne "write_bitstream"} {
            stub_fail "launch_runs: -to_step [dict get $opts -to_step] is not write_bitstream"
        }
        set dir [file join [dict get $::project dir] [dict get $::project name].runs impl_1]
        stub_touch [file join $dir ${::bd}_wrapper.bit]
    }
}
dict set ::runs synth_1 0%
dict set ::runs impl_1 0%

proc wait_on_run {args} {
    stub_record wait_on_run {*}$args
    stub_parse wait_on_run $args {-timeout 1 -quiet 0}
}

proc open_run {args} {
    stub_record open_run {*}$args
    lassign [stub_parse open_run $args {-name 1 -quiet 0}] opts pos
    if {[dict get $::runs [lindex $pos 0]] ne "100%"} {
        stub_fail "open_run: [lindex $pos 0] has not run"
    }
}

proc report_utilization {args} {
    stub_record report_utilization {*}$args
    lassign [stub_parse report_utilization $args {-file 1 -cells 1 -hierarchical 0 -append 0 -quiet 0 -pblocks 1 -slr 0}] opts pos
    if {[dict exists $opts -file]} {
        stub_touch [dict get $opts -file]
    }
}

proc report_timing_summary {args} {
    stub_record report_timing_summary {*}$args
    lassign [stub_parse report_timing_summary $args {-file 1 -cells 1 -delay_type 1 -max_paths 1 -nworst 1 -report_unconstrained 0 -warn_on_violation 0 -quiet 0}] opts pos
    if {[dict exists $opts -file]} {
        stub_touch [dict get $opts -file]
    }
}

proc get_timing_paths {args} {
    stub_record get_timing_paths {*}$args
    stub_parse get_timing_paths $args {-delay_type 1 -max_paths 1 -nworst 1 -setup 0 -hold 0 -quiet 0}
    return path:worst
}

proc write_hw_platform {args} {
    stub_record write_hw_platform {*}$args
    lassign [stub_parse write_hw_platform $args {-fixed 0 -include_bit 0 -force 0 -file 1 -minimal 0}] opts pos
    stub_touch [dict get $opts -file]
}

# The linked design of a Vitis build (post_route.tcl): the shell's cells and ours.
set ::linked_cells {level0_i/ulp/xaihls_top_1 level0_i/ulp/ii_level0_wire level0_i/blp/blp_i}

proc get_cells {args} {
    stub_record get_cells {*}$args
    lassign [stub_parse get_cells $args {-hierarchical 0 -filter 1 -quiet 0 -of_objects 1}] opts pos
    if {![dict exists $opts -filter] || ![regexp {^NAME =~ (\S+)$} [dict get $opts -filter] -> pattern]} {
        stub_fail "get_cells: the stub takes -filter {NAME =~ PATTERN} only"
    }
    return [lsearch -all -inline -glob $::linked_cells $pattern]
}

# --------------------------------------------------------------------------- IP packager

# The packaged core: its top's ports (read from the RTL file named xaihls_top.sv among the
# project's sources), bus interfaces name -> {vlnv ports}, bus parameters, memory maps.
namespace eval ipx {}

proc ipx::stub_core {} {
    if {$::ipx_core eq {}} {
        stub_fail "ipx: no current core (ipx::package_project first)"
    }
}

proc ipx::package_project {args} {
    stub_record ipx::package_project {*}$args
    lassign [stub_parse ipx::package_project $args {-root_dir 1 -vendor 1 -library 1 -taxonomy 1 -import_files 0 -set_current 1 -force 0 -name 1 -version 1 -generated_files 0 -module 1}] opts pos
    stub_need_project ipx::package_project
    set ::ipx_core [dict create root [dict get $opts -root_dir] busifs [dict create] params [dict create] maps [dict create]]
    file mkdir [dict get $opts -root_dir]
}

proc ipx::current_core {args} {
    stub_record ipx::current_core {*}$args
    ipx::stub_core
    return ipx:core
}

proc ipx::stub_top_ports {} {
    # the ports of the engine's top, as the IP packager reads them from the sources
    set f [open $::stub_rtl_top r]
    set text [read $f]
    close $f
    return [regexp -all -inline -line {^\s*(?:input|output)\s+logic\s*(?:\[[^\]]*\])?\s*(\w+)} $text]
}

proc ipx::infer_bus_interfaces {args} {
    stub_record ipx::infer_bus_interfaces {*}$args
    lassign [stub_parse ipx::infer_bus_interfaces $args {}] opts pos
    ipx::stub_core
    if {[lindex $pos 0] ne "xilinx.com:interface:aximm_rtl:1.0"} {
        stub_fail "ipx::infer_bus_interfaces: the stub infers AXI4 memory-mapped interfaces only"
    }
    set groups [dict create]
    foreach {match port} [ipx::stub_top_ports] {
        if {[regexp {^(\w+?)_(awaddr|wdata|rdata|araddr|bresp|awvalid|arvalid)$} $port -> prefix]} {
            dict set groups $prefix 1
        }
    }
    foreach prefix [dict keys $groups] {
        set ports {}
        foreach {match port} [ipx::stub_top_ports] {
            if {[string match ${prefix}_* $port]} {
                lappend ports $port
            }
        }
        dict set ::ipx_core busifs $prefix [dict create vlnv aximm ports $ports]
    }
}

proc ipx::infer_bus_interface {args} {
    stub_record ipx::infer_bus_interface {*}$args
    lassign [stub_parse ipx::infer_bus_interface $args {}] opts pos
    lassign $pos port vlnv core
    ipx::stub_core
    set ports {}
    foreach {match p} [ipx::stub_top_ports] {
        lappend ports $p
    }
    if {$port ni $ports} {
        stub_fail "ipx::infer_bus_interface: the top has no port '$port'"
    }
    if {$vlnv ni {xilinx.com:signal:clock_rtl:1.0 xilinx.com:signal:reset_rtl:1.0 xilinx.com:signal:interrupt_rtl:1.0}} {
        stub_fail "ipx::infer_bus_interface: unknown bus definition '$vlnv'"
    }
    dict set ::ipx_core busifs $port [dict create vlnv $vlnv ports [list $port]]
}

proc ipx::get_bus_interfaces {args} {
    stub_record ipx::get_bus_interfaces {*}$args
    lassign [stub_parse ipx::get_bus_interfaces $args {-of_objects 1 -quiet 0 -filter 1}] opts pos
    ipx::stub_core
    set names [dict keys [dict get $::ipx_core busifs]]
    if {[llength $pos] > 0} {
        set names [lsearch -all -inline -glob $names [lindex $pos 0]]
    }
    return [lmap name $names {string cat ipx:busif: $name}]
}

proc ipx::get_port_maps {args} {
    stub_record ipx::get_port_maps {*}$args
    lassign [stub_parse ipx::get_port_maps $args {-of_objects 1 -quiet 0}] opts pos
    set busif [lindex [split [dict get $opts -of_objects] :] 2]
    return [lmap port [dict get $::ipx_core busifs $busif ports] {string cat ipx:portmap: $port}]
}

proc ipx::get_bus_parameters {args} {
    stub_record ipx::get_bus_parameters {*}$args
    lassign [stub_parse ipx::get_bus_parameters $args {-of_objects 1 -quiet 0}] opts pos
    set busif [lindex [split [dict get $opts -of_objects] :] 2]
    set key $busif/[lindex $pos 0]
    if {[dict exists $::ipx_core params $key]} {
        return ipx:param:$key
    }
    return {}
}

proc ipx::add_bus_parameter {args} {
    stub_record ipx::add_bus_parameter {*}$args
    lassign [stub_parse ipx::add_bus_parameter $args {}] opts pos
    lassign $pos name busif
    if {![string match ipx:busif:* $busif]} {
        stub_fail "ipx::add_bus_parameter: '$busif' is not a bus interface"
    }
    set busif [lindex [split $busif :] 2]
    dict set ::ipx_core params $busif/$name {}
}

proc ipx::associate_bus_interfaces {args} {
    stub_record ipx::associate_bus_interfaces {*}$args
    lassign [stub_parse ipx::associate_bus_interfaces $args {-busif 1 -clock 1 -reset 1 -remove 0}] opts pos
    foreach option {-busif -clock -reset} {
        if {[dict exists $opts $option] && ![dict exists $::ipx_core busifs [dict get $opts $option]]} {
            stub_fail "ipx::associate_bus_interfaces: no bus interface '[dict get $opts $option]'"
        }
    }
}

proc ipx::get_memory_maps {args} {
    stub_record ipx::get_memory_maps {*}$args
    lassign [stub_parse ipx::get_memory_maps $args {-of_objects 1 -quiet 0}] opts pos
    set name [lindex $pos 0]
    return [expr {[dict exists $::ipx_core maps $name] ? "ipx:map:$name" : {}}]
}

proc ipx::add_memory_map {args} {
    stub_record ipx::add_memory_map {*}$args
    lassign [stub_parse ipx::add_memory_map $args {}] opts pos
    dict set ::ipx_core maps [lindex $pos 0] {}
}

proc ipx::get_address_blocks {args} {
    stub_record ipx::get_address_blocks {*}$args
    lassign [stub_parse ipx::get_address_blocks $args {-of_objects 1 -quiet 0}] opts pos
    set map [lindex [split [dict get $opts -of_objects] :] 2]
    set blocks [dict get $::ipx_core maps $map]
    return [expr {[lindex $pos 0] in $blocks ? "ipx:block:$map/[lindex $pos 0]" : {}}]
}

proc ipx::add_address_block {args} {
    stub_record ipx::add_address_block {*}$args
    lassign [stub_parse ipx::add_address_block $args {}] opts pos
    lassign $pos block map
    set map [lindex [split $map :] 2]
    dict lappend ::ipx_core maps $map $block
}

foreach cmd {create_xgui_files update_checksums check_integrity save_core} {
    proc ipx::$cmd {args} "
        stub_record ipx::$cmd {*}\$args
        ipx::stub_core
        if {\$args ne {ipx:core}} { stub_fail \"ipx::$cmd: expected the core, got '\$args'\" }
    "
}

proc stub_ipx_set {object name value} {
    # fileset and file properties of a project, and IP-packager objects
    if {[string match ipx:busif:* $object]} {
        set busif [lindex [split $object :] 2]
        if {$name eq "name"} {
            if {$value ne $busif} {
                dict set ::ipx_core busifs $value [dict get $::ipx_core busifs $busif]
                dict unset ::ipx_core busifs $busif
            }
        } elseif {$name eq "slave_memory_map_ref"} {
            if {![dict exists $::ipx_core maps $value]} {
                stub_fail "slave_memory_map_ref: no memory map '$value'"
            }
        } else {
            stub_fail "set_property: the stub does not know bus-interface property '$name'"
        }
    } elseif {$object eq "ipx:core"} {
        if {$name ni {name version display_name description vendor library}} {
            stub_fail "set_property: the stub does not know core property '$name'"
        }
    } elseif {[string match ipx:param:* $object] || [string match ipx:block:* $object]} {
        if {$name ni {value range}} {
            stub_fail "set_property: '$name' on $object"
        }
    } elseif {[string match fileset:* $object] || [string match file:* $object]} {
        if {$name ni {top file_type}} {
            stub_fail "set_property: the stub does not know file/fileset property '$name'"
        }
    } else {
        stub_fail "set_property: $name on '$object'"
    }
}

proc stub_ipx_get {object name} {
    if {[string match ipx:portmap:* $object] && $name eq "physical_name"} {
        return [lindex [split $object :] 2]
    }
    stub_fail "get_property: the stub does not know $name of $object"
}

# A command the scripts may not use (Vivado has no such command, or the stub does not
# know it): fail with its name rather than run anything on this machine.
proc unknown {args} {
    stub_fail "unknown command '[lindex $args 0]' (not a Vivado command the stubs know)"
}

source $script
stub_record STUB_DONE
close $::stub_log
