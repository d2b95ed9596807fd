// Package geneval scores generated images of kediff's synthetic domain
// (package synth: coloured shapes) against their prompts, the way GenEval
// (Ghosh et al., 2023) scores text-to-image models on real objects: an
// object detector finds what is there, the pixels inside each box give its
// colour, and the prompt's parse says what should be there.
//
// Parse reads the synth caption grammar in English and Chinese
// ("a small red circle to the left of a blue star", "蓝色五角星左边有一个红色的小圆形")
// into the objects a prompt asks for and the relation between them. A
// prompt outside the grammar is an *UnparsedError; Checker.Check counts such
// prompts and reports them, it never drops them silently.
//
// A Checker runs a detector trained on the synth shapes (the fixture
// detect/testdata/shapes_yolov8.onnx) on each image, classifies the colour of
// every detection from the pixels of its box's centre (each pixel votes for
// the nearest synth colour), and scores the image in every category that
// its prompt belongs to, with GenEval's names:
//
//	single_object  one object asked for: a detection of its shape
//	two_object     two objects: both shapes detected
//	counting       every prompt: exactly the asked number of each shape, nothing else
//	colors         one object: its shape detected with its colour
//	position       two objects in a stated relation (left of, above): both found
//	               and their box centres ordered as the prompt says
//	color_attr     two objects: both found, each with its own colour (attribute binding)
//
// Two objects of the same shape are matched to the wanted objects by the
// assignment that binds most colours correctly. Summarise adds results up per
// category and gives GenEval's overall score, the mean of the category scores.
package geneval
