# xaihls block design for a Zynq UltraScale+ board, sourced by build_bitstream.tcl (settings.tcl first).
#   PS8 with the board preset (DDR, MIO), pl_clk0 at the plan's clock, reset from pl_resetn0
#   M_AXI_HPM0_FPD -> SmartConnect -> the engine's AXI4-Lite control and the interrupt controller
#   the engine's AXI4 master -> SmartConnect -> S_AXI_HP0_FPD (DDR), at the board's AXI width
#   the engine's interrupt -> AXI interrupt controller -> pl_ps_irq0 (PYNQ takes PL interrupts
#   only through an axi_intc)
# The PS8 names its ports by the AXI interface behind them: S_AXI_HP0_FPD is S_AXI_GP2
# (PSU__USE__S_AXI_GP2), M_AXI_HPM0_FPD is M_AXI_GP0, M_AXI_HPM1_FPD M_AXI_GP1 and
# M_AXI_HPM0_LPD M_AXI_GP2; a board preset may enable the last two, whose clocks would then
# need drivers, so they are switched off.

proc xaihls_block_design {bd_name} {
    global xaihls_clock_mhz xaihls_axi_bits xaihls_ip_vlnv xaihls_ip_ctrl xaihls_ip_mem
    global xaihls_ip_clk xaihls_ip_rst xaihls_ip_rst_active_low xaihls_ip_params
    create_bd_design $bd_name

    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    set_property -dict [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__USE__S_AXI_GP2 {1} \
        CONFIG.PSU__SAXIGP2__DATA_WIDTH $xaihls_axi_bits \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $xaihls_clock_mhz \
        CONFIG.PSU__USE__FABRIC__RST {1} \
        CONFIG.PSU__NUM_FABRIC_RESETS {1} \
        CONFIG.PSU__USE__IRQ0 {1} \
    ] $ps
    puts "xaihls: pl_clk0 asked $xaihls_clock_mhz MHz, the PS makes [get_property CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ $ps] MHz"

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
    set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_ps8]

    # control: PS master -> engine registers, interrupt controller registers
    connect_bd_intf_net [get_bd_intf_pins zynq_ultra_ps_e_0/M_AXI_HPM0_FPD] [get_bd_intf_pins ctrl_smc/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M00_AXI] [get_bd_intf_pins xaihls_top_0/$xaihls_ip_ctrl]
    connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M01_AXI] [get_bd_intf_pins axi_intc_0/s_axi]
    # data: engine master -> DDR through the high-performance port
    connect_bd_intf_net [get_bd_intf_pins xaihls_top_0/$xaihls_ip_mem] [get_bd_intf_pins mem_smc/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins mem_smc/M00_AXI] [get_bd_intf_pins zynq_ultra_ps_e_0/S_AXI_HP0_FPD]

    # one clock: pl_clk0 for the engine, both SmartConnects and both PS ports
    connect_bd_net [get_bd_pins zynq_ultra_ps_e_0/pl_clk0] \
        [get_bd_pins zynq_ultra_ps_e_0/maxihpm0_fpd_aclk] [get_bd_pins zynq_ultra_ps_e_0/saxihp0_fpd_aclk] \
        [get_bd_pins ctrl_smc/aclk] [get_bd_pins mem_smc/aclk] \
        [get_bd_pins axi_intc_0/s_axi_aclk] [get_bd_pins rst_ps8/slowest_sync_clk] \
        [get_bd_pins xaihls_top_0/$xaihls_ip_clk]
    connect_bd_net [get_bd_pins zynq_ultra_ps_e_0/pl_resetn0] [get_bd_pins rst_ps8/ext_reset_in]
    connect_bd_net [get_bd_pins rst_ps8/interconnect_aresetn] [get_bd_pins ctrl_smc/aresetn] [get_bd_pins mem_smc/aresetn]
    connect_bd_net [get_bd_pins rst_ps8/peripheral_aresetn] [get_bd_pins axi_intc_0/s_axi_aresetn]
    if {$xaihls_ip_rst_active_low} {
        connect_bd_net [get_bd_pins rst_ps8/peripheral_aresetn] [get_bd_pins xaihls_top_0/$xaihls_ip_rst]
    } else {
        connect_bd_net [get_bd_pins rst_ps8/peripheral_reset] [get_bd_pins xaihls_top_0/$xaihls_ip_rst]
    }

    connect_bd_net [get_bd_pins xaihls_top_0/interrupt] [get_bd_pins axi_intc_0/intr]
    connect_bd_net [get_bd_pins axi_intc_0/irq] [get_bd_pins zynq_ultra_ps_e_0/pl_ps_irq0]

    # Every slave gets an address: the engine's registers and the interrupt controller on
    # HPM0_FPD (0xA000_0000 and up), DDR for the engine's master through HP0_FPD.
    assign_bd_address
}
