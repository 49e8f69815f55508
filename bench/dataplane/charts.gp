# Charts of the data-plane benchmark, from the files switchboard-bench-report writes.
#   gnuplot -e "datadir='DIR'; outdir='DIR'; sizes='200 1024'" bench/dataplane/charts.gp
# throughput.png: events in per second by system and event size (median, bars: min–max).
# latency.png:    latency by percentile at half of each system's maximum, one panel a size.
load datadir.'/charts-vars.gp'

size_name(s) = (int(s) % 1024 == 0) ? sprintf('%d KiB', int(s) / 1024) : sprintf('%d B', int(s))
nsizes = words(sizes)
k(v) = v >= 1e6 ? sprintf('%.2fM', v / 1e6) : sprintf('%.0fk', v / 1e3)

set terminal pngcairo size 1400,720 font 'DejaVu Sans,11' noenhanced
set output outdir.'/throughput.png'
set title 'Events in per second (median of the runs; error bars: min–max)'
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set ylabel 'events / s'
set format y '%.1s%c'
set xtics rotate by -30 scale 0
set key top right
set bmargin 8
bar_w = 1.0 / (nsizes + 1)
plot for [i=1:nsizes] datadir.'/throughput.dat' using (column(3*i-1)):(column(3*i)):(column(3*i+1)):xtic(1) \
       title size_name(word(sizes, i)), \
     for [i=1:nsizes] datadir.'/throughput.dat' \
       using ($0 + (i - (nsizes + 1) / 2.0) * bar_w):(column(3*i+1)):(k(column(3*i-1))) \
       with labels rotate by 90 left offset 0,0.5 font ',9' notitle

reset
set terminal pngcairo size 1400,760 font 'DejaVu Sans,11' noenhanced
set output outdir.'/latency.png'
set multiplot layout 1, nsizes title 'End-to-end latency at half of each system''s maximum (the run with the median p99)'
set logscale x
set logscale y
set xrange [1.6:15000]
set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)
set ylabel 'latency, µs'
set grid xtics ytics mytics
set format y '%g'
set key below horizontal maxrows 3 font ',10' width 2
# x = 1 / (1 - q): each "nine" takes the same width. Ten distinct colours (tab10).
colors = '#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf'
do for [i=1:nsizes] {
  s = word(sizes, i)
  cols = value('lat_cols_'.s)
  set title size_name(s).' events'
  if (cols > 1) {
    plot for [c=2:cols] datadir.'/latency-'.s.'.dat' using (1 / (1 - $1)):(column(c)) \
      with linespoints lw 2 pt (c % 7 + 1) lc rgb word(colors, (c - 2) % 10 + 1) title columnheader(c)
  } else {
    unset key
    plot 1 notitle
  }
}
unset multiplot
