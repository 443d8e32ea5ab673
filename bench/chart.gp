# Draws bench/results/performance.png from throughput.dat and latency.dat (bench/report.py).
# usage: gnuplot -e "dir='bench/results'" bench/chart.gp
if (!exists("dir")) dir = "bench/results"
set terminal pngcairo size 1400,560 font "sans,10"
set output dir."/performance.png"
set multiplot layout 1,2 title "NoMQ on loopback against raw UDP, Mosquitto and ZeroMQ (same run; medians)"

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set ylabel "messages/s delivered (log scale)"
set xtics rotate by -35 left
set key top left
set grid ytics
set title "Throughput between two processes"
plot for [c=2:*] dir."/throughput.dat" using c:xtic(1) title columnhead(c)

set yrange [1:*]
set format y "%g"
set ylabel "microseconds, 64 B (log scale)"
set title "Round trip: publish to delivery report / ping-pong"
plot dir."/latency.dat" using 2:xtic(1) title columnhead(2), "" using 3 title columnhead(3)
unset multiplot
