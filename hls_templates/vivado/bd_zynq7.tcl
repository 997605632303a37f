# xaihls block design for a Zynq-7000 board, sourced by build_bitstream.tcl (settings.tcl first).
#   PS7 with the board preset (DDR, MIO), FCLK_CLK0 at the plan's clock, reset from FCLK_RESET0_N
#   M_AXI_GP0 -> SmartConnect -> the engine's AXI4-Lite control and the interrupt controller
#   the engine's AXI4 master -> SmartConnect -> S_AXI_HP0 (DDR), at the board's AXI width
#   the engine's interrupt -> AXI interrupt controller -> IRQ_F2P (PYNQ takes PL interrupts
#   only through an axi_intc)

proc xaihls_block_design {bd_name} {
    global xaihls_clock_mhz xaihls_axi_bits xaihls_ip_vlnv xaihls_ip_ctrl xaihls_ip_mem
    global xaihls_ip_clk xaihls_ip_rst xaihls_ip_rst_active_low xaihls_ip_params
    create_bd_design $bd_name

    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7 ps7]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH $xaihls_axi_bits \
        CONFIG.PCW_EN_CLK0_PORT {1} \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $xaihls_clock_mhz \
        CONFIG.PCW_EN_RST0_PORT {1} \
        CONFIG.PCW_USE_FABRIC_INTERRUPT {1} \
        CONFIG.PCW_IRQ_F2P_INTR {1} \
    ] $ps
    puts "xaihls: FCLK_CLK0 asked $xaihls_clock_mhz MHz, the PS makes [get_property CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ $ps] MHz"

    set engine [create_bd_cell -type ip -vlnv $xaihls_ip_vlnv xaihls_top_0]
    if {[llength $xaihls_ip_params] > 0} {
        set_property -dict $xaihls_ip_params $engine
    }
    set intc [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_intc axi_intc_0]
    set_property -dict [list CONFIG.C_IRQ_CONNECTION {1}] $intc
    set ctrl [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect ctrl_smc]
    set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {2}] $ctrl
    set mem [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect mem_smc]
    set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $mem
    set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_ps7]

    # control: PS master -> engine registers, interrupt controller registers
    connect_bd_intf_net [get_bd_intf_pins ps7/M_AXI_GP0] [get_bd_intf_pins ctrl_smc/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M00_AXI] [get_bd_intf_pins xaihls_top_0/$xaihls_ip_ctrl]
    connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M01_AXI] [get_bd_intf_pins axi_intc_0/s_axi]
    # data: engine master -> DDR through the high-performance port
    connect_bd_intf_net [get_bd_intf_pins xaihls_top_0/$xaihls_ip_mem] [get_bd_intf_pins mem_smc/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins mem_smc/M00_AXI] [get_bd_intf_pins ps7/S_AXI_HP0]

    # one clock: FCLK_CLK0 for the engine, both SmartConnects and both PS ports
    connect_bd_net [get_bd_pins ps7/FCLK_CLK0] \
        [get_bd_pins ps7/M_AXI_GP0_ACLK] [get_bd_pins ps7/S_AXI_HP0_ACLK] \
        [get_bd_pins ctrl_smc/aclk] [get_bd_pins mem_smc/aclk] \
        [get_bd_pins axi_intc_0/s_axi_aclk] [get_bd_pins rst_ps7/slowest_sync_clk] \
        [get_bd_pins xaihls_top_0/$xaihls_ip_clk]
    connect_bd_net [get_bd_pins ps7/FCLK_RESET0_N] [get_bd_pins rst_ps7/ext_reset_in]
    connect_bd_net [get_bd_pins rst_ps7/interconnect_aresetn] [get_bd_pins ctrl_smc/aresetn] [get_bd_pins mem_smc/aresetn]
    connect_bd_net [get_bd_pins rst_ps7/peripheral_aresetn] [get_bd_pins axi_intc_0/s_axi_aresetn]
    if {$xaihls_ip_rst_active_low} {
        connect_bd_net [get_bd_pins rst_ps7/peripheral_aresetn] [get_bd_pins xaihls_top_0/$xaihls_ip_rst]
    } else {
        connect_bd_net [get_bd_pins rst_ps7/peripheral_reset] [get_bd_pins xaihls_top_0/$xaihls_ip_rst]
    }

    connect_bd_net [get_bd_pins xaihls_top_0/interrupt] [get_bd_pins axi_intc_0/intr]
    connect_bd_net [get_bd_pins axi_intc_0/irq] [get_bd_pins ps7/IRQ_F2P]

    # Every slave gets an address: the engine's registers and the interrupt controller on
    # GP0 (0x4000_0000 and up), all of DDR for the engine's master through HP0.
    assign_bd_address
}
