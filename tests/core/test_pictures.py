import numpy as np

from arc_ttt.core.pictures import LINE, PALETTE, cell_size, figure, grid_image


def test_a_grid_is_drawn_cell_by_cell_in_the_arc_palette_with_grid_lines():
    img = grid_image(np.array([[0, 1], [2, 9]]), cell=3)
    assert img.shape == (2 * 4 + 1, 2 * 4 + 1, 3)
    assert (img[0] == LINE).all() and (img[:, 4] == LINE).all()
    assert (img[1:4, 1:4] == PALETTE[0]).all() and (img[1:4, 5:8] == PALETTE[1]).all()
    assert (img[5:8, 1:4] == PALETTE[2]).all() and (img[5:8, 5:8] == PALETTE[9]).all()


def test_a_figure_embeds_a_png_and_says_the_shape():
    html = figure("test 0 input", np.zeros((2, 3), int), cell_size([np.zeros((30, 30))]), ok=True)
    assert 'src="data:image/png;base64,' in html and "test 0 input 2x3" in html and "✓" in html
    assert "none" in figure("attempt 2", None, 5)
